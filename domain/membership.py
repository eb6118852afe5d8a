"""Who the partnership's parties are today: the fact every command about parties consults.

The `Partnership` aggregate (domain/termination.py) records who joined, who left and when, and
whether the partnership has ended. Commands do not load it themselves: the application service reads
it once per command and hands its answer to the rules (`Rules.membership`), as it hands them the
policy the case started under (`rules_for(case)`), so that a rule about parties is a plain function
of what it is given.

MOU, Termination; governance.md: when a notice or an agreement takes effect that party leaves; a
party that has left is no party to new cases and takes no part in open ones. With fewer than two
parties left (or by everyone's agreement) the partnership ends: then no party takes part in anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from domain.errors import NotAPartyError


class FormerPartyError(NotAPartyError):
    """A party that has left the partnership (or whose partnership has ended) was named as a party,
    or acted for itself, after it left."""


@dataclass(frozen=True)
class Departure:
    party: str
    on: date
    reference: str  # the notice or agreement that took it out


@dataclass(frozen=True)
class Membership:
    """The members now, those who have left (when, and by which case), and when the partnership ended."""

    members: tuple[str, ...]
    departures: tuple[Departure, ...] = ()
    ended_on: date | None = None
    ended_by: str = ""

    @classmethod
    def founding(cls, parties: Iterable[str]) -> Membership:
        """The partnership as formed: every party of the policy, nobody gone."""
        return cls(members=tuple(parties))

    def departure(self, party: str) -> Departure | None:
        """When and how `party` stopped taking part, or None while it is a member of a live partnership."""
        gone = next((d for d in self.departures if d.party == party), None)
        if gone is not None:
            return gone
        if self.ended_on is not None and party in self.members:
            return Departure(party=party, on=self.ended_on, reference=self.ended_by)
        return None

    def is_member(self, party: str) -> bool:
        return self.departure(party) is None and party in self.members

    def current(self, parties: Iterable[str]) -> list[str]:
        """Those of `parties` who still take part."""
        return [p for p in parties if self.is_member(p)]

    def left_text(self, party: str) -> str:
        gone = self.departure(party)
        if gone is None:
            return f"{party} is a member of the partnership"
        by = f" ({gone.reference})" if gone.reference else ""
        if self.ended_on is not None and not any(d.party == party for d in self.departures):
            return f"the partnership ended on {gone.on.isoformat()}{by}; {party} is no longer a party"
        return f"{party} left the partnership on {gone.on.isoformat()}{by}"

    def check_parties(self, parties: Iterable[str], what: str) -> None:
        """Refuse `parties` (named in a command) if any has left: `what` says where they were named."""
        for party in parties:
            if self.departure(party) is not None:
                raise FormerPartyError(
                    f"{what}: {self.left_text(party)}; a former party is no party to new cases "
                    f"(members: {', '.join(self.current(self.members)) or 'none'})"
                )

    def check_acting_for(self, party: str, doing: str) -> None:
        """Refuse a command given for `party` (its representative, or its own body) if it has left."""
        if self.departure(party) is not None:
            raise FormerPartyError(f"{self.left_text(party)}; it takes no part in {doing}")
