"""Human references for cases (`PRO-2026-0001`), numbered per kind and per year.

A `ReferenceSequence` aggregate per prefix and year issues the numbers. It is saved in the same
transaction as the case it numbers, so two cases started at the same moment conflict on the
sequence's version: one commits, the other is retried with the next number. No number is issued
twice and none is skipped by a failed start.

A `CommandReceipt` records which case a start command opened, keyed by the command id, so a start
that is retried (a client that timed out, an activity retried after its commit) returns the case it
already opened instead of opening a second one.

A `CaseCommandReceipt` does the same for every other command on a case: which version of the case
the command produced, saved in the same transaction as the case's new events. A case's own
aggregate no longer keeps that ledger (it grew with every command, and every load decoded it); a
repeated command is answered from its receipt, and a concurrent duplicate collides on the receipt's
id (it has one version, which only one writer can store).
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.case import CASE_NAMESPACE
from domain.idempotency import scope_of
from domain.recorded import Recorded


class ReferenceSequence(Recorded):
    @staticmethod
    def create_id(prefix: str, year: int) -> UUID:
        return uuid5(CASE_NAMESPACE, f"sequence:{prefix}-{year}")

    @event("Opened")
    def __init__(self, *, prefix: str, year: int) -> None:
        self.prefix = prefix
        self.year = year
        self.last = 0

    def next_reference(self) -> str:
        return f"{self.prefix}-{self.year}-{self.last + 1:04d}"

    def issue(self) -> str:
        """The next reference in this sequence."""
        self._issue(number=self.last + 1)
        return f"{self.prefix}-{self.year}-{self.last:04d}"

    @event("Issued")
    def _issue(self, *, number: int) -> None:
        self.last = number


class CommandReceipt(Recorded):
    @staticmethod
    def create_id(command_id: str) -> UUID:
        return uuid5(CASE_NAMESPACE, f"command:{command_id}")

    @event("Received")
    def __init__(self, *, command_id: str, reference: str) -> None:
        self.command_id = command_id
        self.reference = reference


class CaseCommandReceipt(Recorded):
    """The version of a case a command on it produced (`CaseService._apply`). Keyed by the case and
    the command id (a scoped id by its scope: person, route and key), as each case's own ledger was:
    the same command id on two cases is two commands, and the same scope with other fields finds
    this receipt and is refused (`command_id` is the full id it was given with)."""

    @staticmethod
    def create_id(reference: str, command_id: str) -> UUID:
        """A scoped command id's receipt is kept under its scope (person, route, key), so the same
        scope with other fields finds it; any other command id's under itself."""
        return uuid5(CASE_NAMESPACE, f"case-command:{reference}:{scope_of(command_id) or command_id}")

    @event("Received")
    def __init__(self, *, reference: str, command_id: str, version: int) -> None:
        self.reference = reference
        self.command_id = command_id
        self.version = version
