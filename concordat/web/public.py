"""What the public may read without signing in: the forward plan of key decisions, the meetings
calendar (with an iCalendar feed), each meeting's agenda, decision notices awaiting their call-in
period, and the register of decisions taken at meetings or by the councils' bodies. Items marked
exempt from publication (an agenda item, a forward-plan entry) are left out, and so are the
decisions on them. The same data as JSON under `/api/v1/public/…`.

Read only: nothing here writes, so nothing needs a person; each answer is built from the store
(meetings and forward-plan entries are few; cases are read one by one, as `concordat report` does).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from icalendar import Calendar, Event

from concordat.commands import Commands
from concordat.web.api import PROBLEMS
from concordat.web.pages import page
from domain.application import CaseService
from domain.forward_plans import ForwardPlanService
from domain.meetings import MeetingService
from domain.values import NAME_PATTERN

pages = APIRouter(include_in_schema=False)
# Problems the public operations may answer with (no token is needed, so no 401 or 403).
PUBLIC_PROBLEMS = {code: PROBLEMS[code] for code in (404, 422, 503)}
api = APIRouter(tags=["public"], responses=PUBLIC_PROBLEMS)
MeetingRef = Annotated[str, Path(pattern=r"^MTG-[0-9]{4}-[0-9]{4}$", examples=["MTG-2026-0001"])]
ForumName = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Only this forum's.")]
ROUTED = ("PRO", "VAR", "FUN", "FND")


def _cases(request: Request) -> CaseService:
    commands: Commands = request.app.state.commands
    return commands.cases


class PublicRecord:
    """The public's view of one store."""

    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.meetings = MeetingService(cases)
        self.plan = ForwardPlanService(cases)

    def meeting_list(self) -> list[dict[str, Any]]:
        policy = self.cases.policy
        found = []
        for meeting in self.meetings.meetings():
            view = meeting.view(public=True)
            view["forum_name"] = policy.forums[meeting.forum].name if meeting.forum in policy.forums else meeting.forum
            found.append(view)
        return found

    def meeting(self, reference: str) -> dict[str, Any]:
        view = self.meetings.view(reference, public=True)
        policy = self.cases.policy
        view["forum_name"] = policy.forums[view["forum"]].name if view["forum"] in policy.forums else view["forum"]
        return view

    def _exempt(self) -> set[str]:
        """Cases whose business is exempt from publication somewhere: none of their decisions is shown."""
        hidden = {i["case"] for m in self.meetings.meetings() for i in m.agenda if i.get("exempt")}
        hidden |= {e["case"] for e in self.plan.entries() if e.get("exempt")}
        return hidden

    def decisions(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(decision notices awaiting their call-in period, the decisions register)."""
        policy = self.cases.policy
        public_forums = set(policy.call_in.forums if policy.call_in else [])
        public_forums |= set(policy.key_decisions.forums if policy.key_decisions else [])
        hidden = self._exempt()
        notices: list[dict[str, Any]] = []
        register: list[dict[str, Any]] = []
        for reference in self.cases.references(ROUTED):
            if reference in hidden:
                continue
            view = self.cases.state(reference)
            for entry in view.awaiting:
                held = entry.get("call_in")
                if held:
                    notices.append(
                        {
                            "case": reference,
                            "title": view.title,
                            "forum": held["forum"],
                            "outcome": held["outcome"],
                            "published_on": held["notice_on"],
                            "call_in_until": held["until"],
                            "called_in": bool(held.get("called_in")),
                        }
                    )
            for d in view.details.get("decisions", []):
                meeting = d.get("meeting") or {}
                if not (meeting.get("reference") or meeting.get("written_procedure") or d["forum"] in public_forums):
                    continue
                register.append(
                    {
                        "case": reference,
                        "title": view.title,
                        "forum": d["forum"],
                        "outcome": d["outcome"],
                        "at": d["at"],
                        "meeting": meeting.get("reference", ""),
                        "item": meeting.get("item"),
                        "written_procedure": bool(meeting.get("written_procedure")),
                        "key_decision": bool(d.get("key_decision")),
                        "took_effect": (d.get("took_effect") or {}).get("how", ""),
                    }
                )
        return notices, sorted(register, key=lambda r: r["at"], reverse=True)

    def ical(self) -> bytes:
        """The meetings as an iCalendar feed (RFC 5545): one all-day event per meeting."""
        calendar = Calendar()
        calendar.add("prodid", "-//Concordat//Meetings//EN")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", "Concordat meetings")
        for meeting in self.meeting_list():
            event = Event()
            day = datetime.fromisoformat(meeting["on"]).date()
            event.add("uid", f"{meeting['reference']}@concordat")
            event.add("summary", f"{meeting['forum_name']} ({meeting['reference']})")
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
            event.add("dtstamp", self.cases.now())
            event.add("description", "; ".join(f"{i['item']}. {i['title']} ({i['case']})" for i in meeting["agenda"]))
            calendar.add_component(event)
        return calendar.to_ical()


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return page(request, name, **context)


@pages.get("/public")
async def public_index(request: Request) -> HTMLResponse:
    return _page(request, "public_index.html")


@pages.get("/public/meetings")
async def public_meetings(request: Request) -> HTMLResponse:
    found = await run_in_threadpool(PublicRecord(_cases(request)).meeting_list)
    return _page(request, "public_meetings.html", meetings=found)


@pages.get("/public/meetings.ics")
async def public_meetings_ical(request: Request) -> Response:
    body = await run_in_threadpool(PublicRecord(_cases(request)).ical)
    return Response(body, media_type="text/calendar; charset=utf-8")


@pages.get("/public/meetings/{reference}")
async def public_meeting(request: Request, reference: str) -> HTMLResponse:
    found = await run_in_threadpool(PublicRecord(_cases(request)).meeting, reference)
    return _page(request, "public_meeting.html", meeting=found)


@pages.get("/public/forward-plan")
async def public_forward_plan(request: Request) -> HTMLResponse:
    found = await run_in_threadpool(ForwardPlanService(_cases(request)).entries, public=True)
    return _page(request, "public_forward_plan.html", entries=found)


@pages.get("/public/decisions")
async def public_decisions(request: Request) -> HTMLResponse:
    notices, register = await run_in_threadpool(PublicRecord(_cases(request)).decisions)
    return _page(request, "public_decisions.html", notices=notices, register=register)


@api.get("/public/meetings", summary="The meetings calendar, with each agenda (exempt items left out)")
def api_meetings(request: Request, forum: ForumName = None) -> list[dict[str, Any]]:
    return [m for m in PublicRecord(_cases(request)).meeting_list() if forum is None or m["forum"] == forum]


@api.get("/public/meetings/{reference}", summary="One meeting and its agenda (exempt items left out)")
def api_meeting(request: Request, reference: MeetingRef) -> dict[str, Any]:
    return PublicRecord(_cases(request)).meeting(reference)


@api.get("/public/forward-plan", summary="The forward plan of key decisions (exempt entries left out)")
def api_forward_plan(request: Request, forum: ForumName = None) -> list[dict[str, Any]]:
    return [e for e in ForwardPlanService(_cases(request)).entries(public=True) if forum is None or e["forum"] == forum]


@api.get("/public/decisions", summary="Decision notices awaiting call-in, and the decisions register")
def api_decisions(request: Request, forum: ForumName = None) -> dict[str, list[dict[str, Any]]]:
    notices, register = PublicRecord(_cases(request)).decisions()
    return {
        "notices": [n for n in notices if forum is None or n["forum"] == forum],
        "register": [r for r in register if forum is None or r["forum"] == forum],
    }
