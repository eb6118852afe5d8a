"""Transcripts in the docs, run as a person would type them, their output compared.

The format (docs/contributing-docs.md says it for writers):

- Only ```console blocks run. In them a line `$ COMMAND` (or `NAME$ COMMAND`, the command typed in
  NAME's own terminal) is a command; the lines after it, up to the next prompt, are what it prints
  (standard output and standard error, as a terminal shows them). A command ending in `\\` goes on
  on the next line.
- Commands run with `bash` in one working directory per page, in page order, against one engine
  (`concordat up` on free ports) started for the page, with the venv's `concordat` on PATH (as after
  `. .venv/bin/activate`). `$ concordat up` is that engine's start: its output is compared with the
  engine's banner.
- Each person has their own HOME (so `concordat login` keeps their token apart); variables a command
  exports stay set for the commands after it.
- `<!-- doc-test: people jo=jcu_lead pat=party_rep:PCC,secretary:programme_board -->` anywhere in a page
  makes those people (by the administrator `root`) and signs each in (a token of theirs) before its
  first command, as the page's text says was done.
- A command exits 0 unless what it prints has a line starting `concordat: ` (the one-line refusal).
- Compared after normalising both sides: dates and times, reference years, uuids, hex ids and hashes,
  tokens and keys, the engine's ports and the temporary paths. In an expected line `…` stands for
  any text; a line that is only `…` for any number of lines.

`CONCORDAT_DOCS_WRITE=1` writes the actual output into the page where it differs (then read the diff)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROMPT = re.compile(r"^(?:(?P<who>[a-z][a-z0-9_-]*))?\$ (?P<command>.*)$")
PEOPLE = re.compile(r"<!--\s*doc-test:\s*people\s+(?P<people>[^>]*?)\s*-->")
UP = re.compile(r"^(?:\./uv run (?:--no-dev )?)?concordat up\s*$")
KINDS = "PRO|DSP|TRM|VAR|FUN|FND|AGR|FOI|RPT|REV|RSK|MTG"
REFERENCE = re.compile(rf"\b({KINDS})-\d{{4}}-(\d{{4}})\b")
# Kept from one command to the next: what a command exported. Not these: they are each person's own.
OWN = {"HOME", "PWD", "OLDPWD", "SHLVL", "_", "CONCORDAT_TOKEN"}

DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
NORMALISE = [
    (re.compile(r"cdt_[0-9a-f]{12}\.[A-Za-z0-9_-]+"), "<token>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)?"),
        "<time>",
    ),
    (re.compile(rf"\b{DAY} \d{{2}} {MONTH} \d{{4}}(?: \d{{2}}:\d{{2}})?"), "<date>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    # a date a table wrapped over two lines: "Thu 17 Dec" at the end of one, "2026 17:00" on the next
    (re.compile(rf"\b{DAY} \d{{2}} {MONTH}\b"), "<date>"),
    (re.compile(r"\b\d{4} \d{2}:\d{2}\b"), "<date>"),
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}="), "<key>"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "<hex>"),
    (REFERENCE, r"\1-YYYY-\2"),
    (re.compile(r"\bpid \d+"), "pid <pid>"),
]


@dataclass
class Command:
    who: str  # "" for a plain `$`
    text: str
    expected: list[str]
    line: int  # 1-based line of the prompt in the page
    output_span: tuple[int, int]  # 0-based [start, end) of the expected lines in the page


@dataclass
class Page:
    path: Path
    lines: list[str]
    commands: list[Command]
    people: dict[str, list[str]] = field(default_factory=dict)


def parse(path: Path) -> Page:
    lines = path.read_text().splitlines()
    commands: list[Command] = []
    people: dict[str, list[str]] = {}
    for found in PEOPLE.finditer("\n".join(lines)):
        for item in found["people"].split():
            name, _, roles = item.partition("=")
            people[name] = roles.split(",")
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        i += 1
        current: Command | None = None
        while i < len(lines) and lines[i].strip() != "```":
            prompt = PROMPT.match(lines[i])
            if prompt:
                start = i
                text = prompt["command"]
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text + "\n" + lines[i]  # bash reads the backslash-newline as one line
                current = Command(prompt["who"] or "", text, [], start + 1, (i + 1, i + 1))
                commands.append(current)
            elif current is None:
                raise ValueError(f"{path}:{i + 1}: a console block starts with output, not a `$ ` prompt")
            else:
                current.expected.append(lines[i])
                current.output_span = (current.output_span[0], i + 1)
            i += 1
        i += 1
    return Page(path, lines, commands, people)


def normalise(text: str) -> list[str]:
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` (normalised) matches `actual` (normalised), `…` standing for any text."""
    parts = []
    for line in expected:
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(re.escape(piece) for piece in line.split("…")) + r"\n")
    return re.fullmatch("".join(parts), "".join(line + "\n" for line in actual)) is not None


def refused(expected: list[str]) -> bool:
    return any(line.startswith("concordat: ") for line in expected)


@dataclass
class Result:
    command: Command
    returncode: int
    output: str  # as printed, paths and ports put back as the page shows them

    @property
    def ok(self) -> bool:
        expected, actual = normalise("\n".join(self.command.expected)), normalise(self.output)
        return matches(expected, actual) and (self.returncode != 0) == refused(self.command.expected)


class Session:
    """One page's commands against one running engine, in a working directory of its own."""

    def __init__(self, root: Path, engine_env: dict[str, str], banner: list[str], tokens: dict[str, str]) -> None:
        self.work = root / "work"
        self.homes = root / "home"
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / ".venv").symlink_to(sys.prefix)  # so `. .venv/bin/activate` works as in a checkout
        self.engine_env = engine_env
        self.banner = banner
        self.tokens = tokens
        bin_dir = str(Path(sys.executable).parent)  # the venv's: `concordat` as after `. .venv/bin/activate`
        self.env = {**engine_env, "PATH": bin_dir + os.pathsep + engine_env.get("PATH", os.defpath)}
        self.env.pop("CONCORDAT_TOKEN", None)
        self.env.pop("VIRTUAL_ENV", None)
        self.addresses = {
            engine_env["CONCORDAT_HTTP_ADDRESS"]: "127.0.0.1:8000",
            engine_env["CONCORDAT_TEMPORAL_ADDRESS"]: "127.0.0.1:7233",
        }
        if "CONCORDAT_TEMPORAL_UI_PORT" in engine_env:
            self.addresses["127.0.0.1:" + engine_env["CONCORDAT_TEMPORAL_UI_PORT"]] = "127.0.0.1:8233"

    def home(self, who: str) -> Path:
        home = self.homes / (who or "you")
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return home

    def as_shown(self, text: str) -> str:
        """Output with this run's paths and ports put back as the page shows them."""
        for actual, shown in self.addresses.items():
            text = text.replace(actual, shown)
        text = text.replace(self.engine_env["CONCORDAT_DATA_DIR"], ".concordat")
        text = text.replace(str(self.work) + "/", "")
        return re.sub(re.escape(str(self.homes)) + r"/([a-z0-9_-]+)", r"/home/\1", text)

    def as_typed(self, text: str) -> str:
        """A command as the page shows it, made to run here: this engine's address, this year's references."""
        for actual, shown in self.addresses.items():
            text = text.replace(shown, actual)
        year = dt.datetime.now(dt.UTC).year  # references are numbered by the year they start in
        return REFERENCE.sub(lambda m: f"{m[1]}-{year}-{m[2]}", text)

    def run(self, command: Command) -> Result:
        if UP.match(command.text):
            return Result(command, 0, self.as_shown("\n".join(self.banner)))
        dump = self.work.parent / "env.dump"
        env = {**self.env, "HOME": str(self.home(command.who))}
        if command.who in self.tokens:
            env["CONCORDAT_TOKEN"] = self.tokens[command.who]
        script = f"{self.as_typed(command.text)}\n__rc=$?\nenv -0 > {dump}\nexit $__rc\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
        )
        if dump.exists():
            for item in dump.read_text().split("\0"):
                name, eq, value = item.partition("=")
                if eq and name not in OWN:
                    self.env[name] = value
            dump.unlink()
        return Result(command, done.returncode, self.as_shown(done.stdout))


def report(page: Page, results: list[Result]) -> str:
    out = []
    for result in results:
        if result.ok:
            continue
        command = result.command
        out.append(
            f"{page.path.name}:{command.line}: {command.who}$ {command.text}\n"
            f"  exit {result.returncode} (expected {'non-zero' if refused(command.expected) else '0'})\n"
            "  expected:\n" + "".join(f"    {line}\n" for line in command.expected) + "  got:\n"
            "" + "".join(f"    {line}\n" for line in result.output.rstrip("\n").splitlines())
        )
    return "\n".join(out)


def write_back(page: Page, results: list[Result]) -> None:
    """Put the actual output in the page where it differs (CONCORDAT_DOCS_WRITE=1)."""
    lines = list(page.lines)
    for result in sorted(results, key=lambda r: r.command.output_span[0], reverse=True):
        if result.ok or UP.match(result.command.text):
            continue
        start, end = result.command.output_span
        lines[start:end] = result.output.rstrip("\n").splitlines()
    page.path.write_text("\n".join(lines) + "\n")
