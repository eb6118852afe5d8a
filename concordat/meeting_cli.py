"""`concordat meeting …` and `concordat forward-plan …`: a forum's meetings and a council body's
forward plan of key decisions, kept by the forum's secretary (domain/meetings.py,
domain/forward_plans.py). Each command acts for the person signed in, in the forum's secretary role
(`--as` to choose), and a refusal is recorded as every command's is (`cli._main`). Meetings have no
workflow: they wait for nothing; the decisions taken at them go through the case's workflow
(`concordat decide … --meeting MTG-…`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from concordat.cli import (
    Session,
    _as_option,
    _attempt,
    _command_id,
    _command_opts,
    _date,
    _out,
    _session,
    _settings,
    app,
)
from domain.errors import InvalidInputError

if TYPE_CHECKING:
    from domain.actor import Actor
    from domain.meetings import MeetingService


def _secretary(session: Session, forum: str) -> Actor:
    """The person as the forum's decider (its secretary), or the role they chose with --as."""
    return session.identity.acting_as([session.cases.policy.decider_of(forum)], session.role)


def _meeting_line(view: dict[str, Any]) -> str:
    called = " (called)" if view.get("called") else ""
    agenda = f"agenda published {view['agenda_published_on']}" if view.get("agenda_published_on") else "no agenda yet"
    return f"{view['reference']}  {view['forum']}  {view['on']}{called}  {view['status'].replace('_', ' ')}  {agenda}"


def _show_meeting(as_json: bool, view: dict[str, Any]) -> None:
    def text(c: Any) -> None:
        c.print(_meeting_line(view), highlight=False)
        for item in view.get("agenda", []):
            exempt = "  (exempt)" if item.get("exempt") else ""
            papers = f"  papers: {', '.join(item['papers'])}" if item.get("papers") else ""
            c.print(
                f"  {item['item']}. {item['case']} {item['stage']}: {item['title']}{exempt}{papers}", highlight=False
            )
        if view.get("chair"):
            present = ", ".join(f"{p} ({cap})" for p, cap in view.get("attendance", {}).items())
            c.print(f"  chair {view['chair']}; present: {present}", highlight=False)
        for item, people in view.get("interests", {}).items():
            for person, nature in people.items():
                c.print(f"  interest: {person} in item {item} ({nature})", highlight=False)
        for item, d in view.get("decisions", {}).items():
            c.print(
                f"  decided: item {item} {d['case']} {d['outcome']} ({', '.join(d['taking_part'])})", highlight=False
            )
        if view.get("minutes_ref"):
            approved = f", approved at {view['minutes_approved_at']}" if view.get("minutes_approved_at") else ""
            c.print(f"  minutes {view['minutes_ref']}{approved}", highlight=False)

    _out(as_json, view, text)


def _meeting_command(reference: str, as_: str | None) -> tuple[Session, MeetingService, Actor]:
    from domain.meetings import MeetingService

    session = _session(_settings(), as_)
    meetings = MeetingService(session.cases)
    _attempt["reference"] = reference
    forum = meetings.view(reference)["forum"]
    return session, meetings, _secretary(session, forum)


@app.group("meeting")
def meeting_app() -> None:
    """Meetings of a forum: schedule, agenda, attendance, interests, minutes (the forum's secretary)."""


@meeting_app.command("schedule")
@click.option("--forum", required=True, help="The forum that meets, e.g. board.")
@click.option(
    "--on", "on", default=None, metavar="YYYY-MM-DD", help="A meeting called on this day (default: the policy's next)."
)
@_command_opts
def meeting_schedule(forum: str, on: str | None, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Schedule the forum's next meeting from the policy's dates, or call one on a day (--on)."""
    from domain.meetings import MeetingService

    session = _session(_settings(), as_)
    day = _date(on, "--on") if on else None
    view = MeetingService(session.cases).schedule(
        actor=_secretary(session, forum), forum=forum, on=day, command_id=_command_id(command_id)
    )
    _out(as_json, view, lambda c: c.print(_meeting_line(view), highlight=False))


@meeting_app.command("agenda")
@click.argument("reference")
@click.option(
    "--case", "cases", multiple=True, help="A case to put on the agenda (default: every case awaiting the forum)."
)
@click.option("--exempt", multiple=True, help="A case on the agenda exempt from publication (hidden from the public).")
@_command_opts
def meeting_agenda(
    reference: str,
    cases: tuple[str, ...],
    exempt: tuple[str, ...],
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Publish the meeting's agenda: the cases awaiting its forum, by the policy's notice period."""
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.publish_agenda(
        reference, actor=actor, cases=list(cases) or None, exempt=list(exempt), command_id=_command_id(command_id)
    )
    _show_meeting(as_json, view)


@meeting_app.command("paper")
@click.argument("reference")
@click.option("--item", required=True, type=int, help="The agenda item's number.")
@click.option("--paper", "paper_ref", required=True, help="The paper's reference in the forum's papers.")
@_command_opts
def meeting_paper(
    reference: str, item: int, paper_ref: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Attach a paper to an agenda item, by its reference."""
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.attach_paper(
        reference, actor=actor, item=item, paper_ref=paper_ref, command_id=_command_id(command_id)
    )
    _show_meeting(as_json, view)


@meeting_app.command("open")
@click.argument("reference")
@click.option("--chair", required=True, help="Who chairs it (one of those present).")
@click.option(
    "--present",
    multiple=True,
    required=True,
    metavar="NAME=CAPACITY",
    help="A member present, e.g. ada=elected_member.",
)
@_command_opts
def meeting_open(
    reference: str, chair: str, present: tuple[str, ...], as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Open the meeting on its day, with its chair and the members present."""
    attendance: dict[str, str] = {}
    for entry in present:
        name, sep, capacity = entry.partition("=")
        if not sep or not name.strip() or not capacity.strip():
            raise InvalidInputError(f"--present {entry!r} is not NAME=CAPACITY (e.g. ada=elected_member)")
        attendance[name.strip()] = capacity.strip()
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.open(reference, actor=actor, chair=chair, attendance=attendance, command_id=_command_id(command_id))
    _show_meeting(as_json, view)


@meeting_app.command("attend")
@click.argument("reference")
@click.option("--member", required=True, help="The member who arrived.")
@click.option("--capacity", required=True, help="The capacity they attend in, e.g. ccg.")
@_command_opts
def meeting_attend(
    reference: str, member: str, capacity: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record a member who arrived after the meeting opened."""
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.attend(reference, actor=actor, person=member, capacity=capacity, command_id=_command_id(command_id))
    _show_meeting(as_json, view)


@meeting_app.command("declare")
@click.argument("reference")
@click.option("--item", required=True, type=int, help="The agenda item.")
@click.option("--member", required=True, help="The member declaring it.")
@click.option("--nature", required=True, help="What the interest is.")
@_command_opts
def meeting_declare(
    reference: str, item: int, member: str, nature: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record a member's declaration of interest in an item: they take no part in its decision."""
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.declare_interest(
        reference, actor=actor, item=item, person=member, nature=nature, command_id=_command_id(command_id)
    )
    _show_meeting(as_json, view)


@meeting_app.command("close")
@click.argument("reference")
@click.option("--minutes-ref", required=True, help="The reference of its minutes.")
@_command_opts
def meeting_close(reference: str, minutes_ref: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Close the meeting, naming its minutes."""
    _, meetings, actor = _meeting_command(reference, as_)
    _show_meeting(
        as_json, meetings.close(reference, actor=actor, minutes_ref=minutes_ref, command_id=_command_id(command_id))
    )


@meeting_app.command("approve-minutes")
@click.argument("reference")
@click.option("--at", "at_meeting", required=True, help="The later meeting, in session, that approves them.")
@_command_opts
def meeting_approve_minutes(
    reference: str, at_meeting: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record that the meeting's minutes were approved at the forum's next meeting."""
    _, meetings, actor = _meeting_command(reference, as_)
    view = meetings.approve_minutes(reference, actor=actor, at_meeting=at_meeting, command_id=_command_id(command_id))
    _show_meeting(as_json, view)


@meeting_app.command("show")
@click.argument("reference")
@_as_option
def meeting_show(reference: str, as_: str | None, as_json: bool) -> None:
    """A meeting: its agenda, attendance, interests, decisions and minutes."""
    from domain.meetings import MeetingService

    session = _session(_settings(), as_)
    session.reader()
    _show_meeting(as_json, MeetingService(session.cases).view(reference))


@meeting_app.command("list")
@click.option("--forum", default=None, help="Only this forum's meetings.")
@_as_option
def meeting_list(forum: str | None, as_: str | None, as_json: bool) -> None:
    """Meetings, earliest first."""
    from domain.meetings import MeetingService

    session = _session(_settings(), as_)
    session.reader()
    views = [m.view() for m in MeetingService(session.cases).meetings(forum)]

    def text(c: Any) -> None:
        for view in views:
            c.print(_meeting_line(view), highlight=False)

    _out(as_json, views, text)


@app.group("forward-plan")
def forward_plan_app() -> None:
    """The forward plan of a council body's key decisions (its secretary)."""


def _entry_line(e: dict[str, Any]) -> str:
    key = "key decision" if e["key"] else "not key"
    extra = ""
    if e.get("general_exception"):
        extra += f"; general exception (notice to {e['general_exception']['notice_to']})"
    if e.get("special_urgency"):
        extra += f"; special urgency (agreed by {e['special_urgency']['agreed_by']})"
    return f"{e['case']}  {e['forum']}  on the plan since {e['published_on']}  {key}{extra}"


def _on_forward_plan(
    reference: str, forum: str, as_: str | None, as_json: bool, command_id: str | None, act: Any, **fields: Any
) -> None:
    """A forum secretary's entry on the forward plan (`act` picks the ForwardPlanService method)."""
    from domain.forward_plans import ForwardPlanService

    session = _session(_settings(), as_)
    _attempt["reference"] = reference
    view = act(ForwardPlanService(session.cases))(
        actor=_secretary(session, forum), case=reference, forum=forum, command_id=_command_id(command_id), **fields
    )
    _out(as_json, view, lambda c: c.print(_entry_line(view), highlight=False))


@forward_plan_app.command("add")
@click.argument("reference")
@click.option("--forum", required=True, help="The council body that will take the decision, e.g. pcc_decision.")
@click.option("--significant-effect", is_flag=True, help="It will have a significant effect on communities.")
@click.option("--exempt", is_flag=True, help="Exempt from publication (hidden from the public forward plan).")
@_command_opts
def forward_plan_add(
    reference: str,
    forum: str,
    significant_effect: bool,
    exempt: bool,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Publish a case on the forum's forward plan today."""
    _on_forward_plan(
        reference,
        forum,
        as_,
        as_json,
        command_id,
        lambda plans: plans.add,
        significant_effect=significant_effect,
        exempt=exempt,
    )


@forward_plan_app.command("exception")
@click.argument("reference")
@click.option("--forum", required=True, help="The council body taking the decision.")
@click.option("--notice-to", required=True, help="The chair of scrutiny given notice.")
@click.option("--reason", required=True, help="Why it could not wait for the forward plan.")
@_command_opts
def forward_plan_exception(
    reference: str, forum: str, notice_to: str, reason: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record the general exception: notice given to the chair of scrutiny (5 clear days before)."""
    _on_forward_plan(
        reference,
        forum,
        as_,
        as_json,
        command_id,
        lambda plans: plans.general_exception,
        notice_to=notice_to,
        reason=reason,
    )


@forward_plan_app.command("urgency")
@click.argument("reference")
@click.option("--forum", required=True, help="The council body taking the decision.")
@click.option("--agreed-by", required=True, help="The chair of scrutiny who agreed it is urgent.")
@click.option("--reason", required=True, help="Why it cannot reasonably be deferred.")
@_command_opts
def forward_plan_urgency(
    reference: str, forum: str, agreed_by: str, reason: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record special urgency: the chair of scrutiny agreed the decision cannot wait."""
    _on_forward_plan(
        reference,
        forum,
        as_,
        as_json,
        command_id,
        lambda plans: plans.special_urgency,
        agreed_by=agreed_by,
        reason=reason,
    )


@forward_plan_app.command("show")
@_as_option
def forward_plan_show(as_: str | None, as_json: bool) -> None:
    """The forward plan: every entry, with the earliest day each decision may be taken."""
    from domain.forward_plans import ForwardPlanService

    session = _session(_settings(), as_)
    session.reader()
    entries = ForwardPlanService(session.cases).entries()

    def text(c: Any) -> None:
        for e in entries:
            c.print(f"{_entry_line(e)}  earliest {e['earliest']} ({e['footing']})", highlight=False)

    _out(as_json, entries, text)
