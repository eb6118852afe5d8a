"""The Freedom of Information clock: when a request must be answered, as a pure function of dates.

FOIA s.10(1): an authority complies "not later than the twentieth working day following the date
of receipt". s.10(6): a working day is any day other than a Saturday, a Sunday, Christmas Day, Good
Friday, or a bank holiday "in any part of the United Kingdom" — so the count skips the bank holidays
of England and Wales, Scotland and Northern Ireland alike (the union; the regulator's count), taken
from the maintained `holidays` library, never a hand-written list.

Two things stop the clock:

- Clarification (s.1(3)): while the authority has asked the requester for what it reasonably needs
  to find the information, it need not comply; when the clarification arrives, that day is the new
  date of receipt (s.10(6)(b)), so the twenty days start again from day one.
- A fees notice (s.10(2)): the working days from the day the notice is given to the day the fee is
  received, both included, are disregarded. While it is unpaid the clock stands still.

A public-interest extension (s.10(3)) replaces the due date with a later one the authority names
(the regulator: normally no more than a further twenty working days; the policy bounds it).

`foi_clock` answers from the dates alone; the `FoiRequest` aggregate (`domain/foi.py`) records them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

# The nations whose bank holidays stop the count (`holidays` subdivisions of GB): England, Wales,
# Scotland, Northern Ireland. England and Wales share a list; naming both costs nothing.
UK_NATIONS = ("ENG", "WLS", "SCT", "NIR")

RUNNING = "running"
AWAITING_CLARIFICATION = "awaiting_clarification"
AWAITING_FEE = "awaiting_fee"


class UkWorkingDays:
    """Working days for FOI: not a weekend, and not a bank holiday in any nation named."""

    def __init__(self, country: str = "GB", nations: Iterable[str] = UK_NATIONS) -> None:
        import holidays  # here, not at import: it loads every country it knows (most of a second)

        self.nations = tuple(nations)
        self._lists = {n: holidays.country_holidays(country, subdiv=n) for n in self.nations}

    def holidays_on(self, day: date) -> dict[str, str]:
        """The nations for which `day` is a bank holiday, with its name there."""
        return {n: str(h.get(day)) for n, h in self._lists.items() if day in h}

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not any(day in h for h in self._lists.values())

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`th working day after `day` (the day itself never counts)."""
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def working_days_between(self, after: date, upto: date) -> int:
        """Working days in (after, upto]."""
        return sum(1 for n in range(1, (upto - after).days + 1) if self.is_working_day(after + timedelta(days=n)))


@dataclass(frozen=True)
class Span:
    """A stop of the clock: from `start` (the day clarification was sought, or the fees notice was
    given) to `end` (the day the clarification or the fee arrived), or still open (`end` None)."""

    start: date
    end: date | None = None


@dataclass(frozen=True)
class FoiClock:
    """Where a request's clock stands. `counted_from` is the date of receipt the count runs from
    (the latest clarification's arrival, else the request's). `statutory_due` is the twentieth
    working day (fee days disregarded); `due` is the date the answer is owed (the extension's, where
    one was given); both None while the clock is stopped."""

    status: str
    counted_from: date
    statutory_due: date | None
    due: date | None


def foi_clock(
    calendar: UkWorkingDays,
    *,
    received: date,
    clarifications: Sequence[Span] = (),
    fees: Sequence[Span] = (),
    extended_to: date | None = None,
    working_days: int = 20,
) -> FoiClock:
    """When the answer to a request received on `received` is due, given the clarifications sought
    and the fees notices given (each in order of its start) and any public-interest extension."""
    counted_from = received
    for c in clarifications:
        if c.end is None:
            return FoiClock(AWAITING_CLARIFICATION, counted_from, None, None)
        counted_from = max(counted_from, c.end)  # s.1(3), s.10(6)(b): day one again from its arrival
    day, counted = counted_from, 0
    while counted < working_days:
        day += timedelta(days=1)
        if any(f.end is None and f.start <= day for f in fees):
            return FoiClock(AWAITING_FEE, counted_from, None, None)
        if calendar.is_working_day(day) and not any(f.start <= day <= (f.end or day) for f in fees):
            counted += 1
    due = max(day, extended_to) if extended_to is not None else day
    return FoiClock(RUNNING, counted_from, day, due)
