"""Malformed commands of every kind (wrong types, unknown names, huge and odd strings, absurd amounts,
dates out of range) are refused with a domain error — never another exception — and the store is
byte-for-byte unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import ConcordatError
from tests.domain.support import open_agreed_fund
from tests.policies import WITHOUT_COUNCIL_PROCEDURE

POLICY = WITHOUT_COUNCIL_PROCEDURE
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
PAT, CY = Actor.parse("party_rep:PCC:pat"), Actor.parse("party_rep:CCC:cy")

odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5000)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    odd_text,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
not_a_kind = odd_text.filter(lambda t: t not in POLICY.proposal.kinds)
not_an_outcome = odd_text.filter(lambda t: t not in {"approve", "refer", "reject"})


def rows(app: CaseService) -> list[tuple[str, bytes]]:
    return [(n.topic, bytes(n.state)) for n in app.recorder.select_notifications(start=1, limit=100_000)]


def seeded() -> tuple[CaseService, str]:
    app = CaseService(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}, policy=POLICY, clock=lambda: T0
    )
    ref = app.start_proposal(
        actor=LEAD, command_id="s", title="t", kind="procurement", value_pence=1, parties=["PCC"], public_health=False
    ).reference
    open_agreed_fund(app, "F", balance=100)
    return app, ref


commands = st.one_of(
    st.builds(
        lambda kind, title, value, parties: (
            "start",
            {"title": title, "kind": kind, "value_pence": value, "parties": parties},
        ),
        not_a_kind,
        odd_text,
        st.integers(-(10**30), 10**30),
        st.lists(odd_text, max_size=4),
    ),
    st.builds(
        lambda value: ("start", {"title": "t", "kind": "procurement", "value_pence": value, "parties": ["PCC"]}),
        st.integers(max_value=-1),
    ),
    st.builds(
        lambda stage, outcome, note: ("decide", {"stage": stage, "outcome": outcome, "note": note}),
        st.sampled_from(["jcu", "board", "", "∅"]),
        not_an_outcome,
        odd_text,
    ),
    st.builds(
        lambda against, subject: ("dispute", {"against": against, "subject": subject}),
        anything.filter(lambda v: not (isinstance(v, list) and v and all(p in ("CCC", "CPCCG") for p in v))),
        odd_text,
    ),
    st.builds(
        lambda fields: ("notice", fields),
        st.fixed_dictionaries(
            {
                "letter_ref": st.one_of(
                    st.just(""), st.just("   "), st.none(), st.integers(), st.lists(st.integers(), max_size=2)
                )
            },
            optional={"effective": st.one_of(anything, st.dates(max_value=datetime(2027, 5, 23).date()))},
        ),
    ),
    st.builds(
        lambda name, kind, balance: ("fund", {"name": name, "type": kind, "balance_pence": balance}),
        odd_text,
        odd_text.filter(lambda t: t not in ("aligned", "pooled")),
        anything,
    ),
    st.builds(
        lambda changes: ("funding", {"fund": "F", "changes": changes}),
        st.dictionaries(
            odd_text.filter(lambda t: t not in ("PCC", "CCC", "CPCCG")), st.integers(), min_size=1, max_size=3
        ),
    ),
    st.builds(
        lambda action, fields: ("act", {"action": action, "fields": fields}),
        odd_text,
        st.dictionaries(odd_text, anything, max_size=3),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cmd=commands)
def test_a_malformed_command_is_refused_and_the_store_is_unchanged(cmd: tuple[str, dict]) -> None:
    app, ref = seeded()
    before = rows(app)
    kind, fields = cmd
    try:
        if kind == "start":
            app.start_proposal(actor=LEAD, command_id="x", public_health=False, **fields)
        elif kind == "decide":
            app.decide(ref, actor=DAN, command_id="x", **fields)
        elif kind == "dispute":
            app.raise_dispute(actor=PAT, fields=fields, command_id="x")
        elif kind == "notice":
            app.serve_notice(actor=CY, fields=fields, command_id="x")
        elif kind == "fund":
            app.open_fund(actor=LEAD, fields=fields, command_id="x")
        elif kind == "funding":
            app.start_funding_change(actor=LEAD, fields=fields, command_id="x")
        else:
            app.act(ref, actor=DAN, command_id="x", **fields)
    except ConcordatError as err:
        assert "\n" not in str(err)  # one line
    else:
        raise AssertionError(f"accepted a malformed command: {cmd!r}")
    assert rows(app) == before
