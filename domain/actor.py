"""Who is acting: every command carries an actor, an id and a role."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidInputError


@dataclass(frozen=True)
class Actor:
    """A person acting in one role. Written `ROLE:ID`; the id is the part after the last colon, so
    `secretary:board:sam` is Sam acting as the board's secretary and `party_rep:CCC:cy` is Cy
    representing Cambridgeshire County Council."""

    id: str
    role: str

    @classmethod
    def parse(cls, text: str) -> Actor:
        role, sep, ident = (text or "").strip().rpartition(":")
        if not sep or not role or not ident.strip():
            msg = f"actor {text!r} is not ROLE:ID (e.g. lead_director:dan, secretary:board:sam)"
            raise InvalidInputError(msg)
        return cls(id=ident.strip(), role=role.strip())

    @property
    def party(self) -> str | None:
        """The party a `party_rep:<party>` acts for; None for every other role."""
        prefix, sep, party = self.role.partition(":")
        return party if prefix == "party_rep" and sep else None

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"
