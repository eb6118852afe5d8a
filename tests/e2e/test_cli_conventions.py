"""CLI conventions: --version, every command in --help, passwords from stdin or asked without echo,
and exit 69 with one line when Temporal cannot be reached, fails, or does not start."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from concordat.cli import app
from tests.e2e.conftest import Engine, _env, free_port
from tests.people import with_token

PASSWORD = "a long enough password"
TERMINAL_SECONDS = 180


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "concordat", *args], env=env, capture_output=True, text=True, input=stdin, timeout=120
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one clear line, never a traceback
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An engine's settings (nothing running), signed in as its administrator."""
    return with_token(_env(tmp_path, free_port()), ["--as", "admin:root"])


def test_version_prints_the_installed_version(env: dict[str, str]) -> None:
    done = cli(env, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"concordat {version('concordat')}"


def test_help_lists_every_command(env: dict[str, str]) -> None:
    done = cli(env, "--help")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(app.commands)
    assert {"worker", "projections", "up", "user"} <= listed
    assert not [name for name, command in app.commands.items() if command.hidden]
    for name, command in app.commands.items():
        if isinstance(command, click.Group):
            inner = cli(env, name, "--help").stdout.split("Commands:")[1]
            assert {line.split()[0] for line in inner.splitlines() if line.strip()} == set(command.commands)


def test_user_password_reads_standard_input_when_asked_to(env: dict[str, str]) -> None:
    assert cli(env, "user", "add", "ada", "--role", "jcu_lead").returncode == 0
    done = cli(env, "user", "password", "ada", "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["has_password"] is True
    assert "at least 12 characters" in one_line(
        cli(env, "user", "password", "ada", "--password-stdin", stdin="short\n")
    )


def test_user_password_without_a_terminal_or_stdin_flag_says_how(env: dict[str, str]) -> None:
    assert cli(env, "user", "add", "ada", "--role", "jcu_lead").returncode == 0
    done = cli(env, "user", "password", "ada", stdin=PASSWORD + "\n")
    assert done.returncode == 1 and "--password-stdin" in one_line(done)
    assert json.loads(cli(env, "user", "show", "ada", "--json").stdout)["has_password"] is False


def at_a_terminal(env: dict[str, str], args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, answering each prompt in turn; its exit code and what the
    terminal showed. Gives up (killing it) after TERMINAL_SECONDS, so a missed prompt fails, not hangs."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal, as in a shell
        os.execve(sys.executable, [sys.executable, "-m", "concordat", *args], env)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + TERMINAL_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue  # a slow start on a busy machine: keep waiting until the deadline
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            # Answer a prompt only once it is shown: getpass discards what was typed before it asks.
            if pending and chunk.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"no answer within {TERMINAL_SECONDS} s; the terminal showed: {shown.decode(errors='replace')}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_user_password_asks_at_the_terminal_without_echo(env: dict[str, str]) -> None:
    assert cli(env, "user", "add", "ada", "--role", "jcu_lead").returncode == 0
    code, shown = at_a_terminal(env, ["user", "password", "ada"], [PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "New password for ada" in shown and "The same again" in shown
    assert PASSWORD not in shown  # not echoed
    assert json.loads(cli(env, "user", "show", "ada", "--json").stdout)["has_password"] is True


def test_two_different_answers_change_nothing(env: dict[str, str]) -> None:
    assert cli(env, "user", "add", "ada", "--role", "jcu_lead").returncode == 0
    code, shown = at_a_terminal(env, ["user", "password", "ada"], [PASSWORD, PASSWORD + "!"])
    assert code == 1 and "the two passwords differ" in shown
    assert json.loads(cli(env, "user", "show", "ada", "--json").stdout)["has_password"] is False


def test_an_unreachable_temporal_exits_69_in_one_line(env: dict[str, str]) -> None:
    done = cli(env, "resume")
    assert done.returncode == 69 and "cannot reach Temporal" in one_line(done)


def test_an_error_from_temporal_exits_69_in_one_line(engine: Engine) -> None:
    ref = engine.ok(
        "proposal", "start", "--title", "Namespaced", "--kind", "procurement", "--value", "1000",
        "--parties", "PCC", who="jcu_lead:jo",
    ).strip()  # fmt: skip
    wrong = {
        **engine.env,
        "CONCORDAT_TEMPORAL_NAMESPACE": "no-such-namespace",
        "CONCORDAT_TOKEN": engine.token_of("lead_director:dan"),
    }
    done = cli(wrong, "decide", ref, "--stage", "jcu", "--outcome", "approve", "--as", "lead_director:dan")
    assert done.returncode == 69, done.stderr
    line = one_line(done)
    assert line.startswith("concordat: Temporal failed (NOT_FOUND)") and "no-such-namespace" in line
    # The outcome is not known to the person: the line names the command id to repeat it with, and
    # repeating it with that id (against the right namespace) does it, once.
    printed = re.search(r"repeat it with --command-id (\S+)$", line)
    assert printed is not None, line
    right = {**engine.env, "CONCORDAT_TOKEN": engine.token_of("lead_director:dan")}
    again = ["decide", ref, "--stage", "jcu", "--outcome", "approve", "--as", "lead_director:dan"]
    assert cli(right, *again, "--command-id", printed.group(1)).returncode == 0
    assert cli(right, *again, "--command-id", printed.group(1)).returncode == 0  # answered, not applied twice
    history = json.loads(
        cli(engine.env | {"CONCORDAT_TOKEN": engine.token_of("auditor:audrey")}, "history", ref, "--json").stdout
    )
    assert [e["event"] for e in history].count("Decided") == 1


def test_up_says_in_one_line_why_temporal_did_not_start(env: dict[str, str]) -> None:
    data = Path(env["CONCORDAT_DATA_DIR"])
    (data / "temporal.sqlite").mkdir(parents=True)  # Temporal cannot open its database
    done = cli(env, "up", "--no-web")
    assert done.returncode == 69, done.stderr
    line = one_line(done)
    assert line.startswith("concordat: Temporal did not start: ") and "unable to open database file" in line


def test_a_case_stored_while_temporal_fails_gets_its_workflow_when_repeated(engine: Engine) -> None:
    """Temporal fails between the store's write and the workflow's start: the person is told the case
    is recorded and how to finish; repeating with the printed command id starts its workflow, with no
    second case."""
    wrong = {
        **engine.env,
        "CONCORDAT_TEMPORAL_NAMESPACE": "no-such-namespace",
        "CONCORDAT_TOKEN": engine.token_of("jcu_lead:jo"),
    }
    start = ["proposal", "start", "--title", "Half started", "--kind", "procurement", "--value", "1000"]
    done = cli(wrong, *start, "--parties", "PCC", "--as", "jcu_lead:jo")
    assert done.returncode == 69, done.stderr
    line = one_line(done)
    found = re.search(r"(PRO-\d{4}-\d{4}) is recorded but Temporal did not start its workflow", line)
    printed = re.search(r"repeat it with --command-id (\S+)$", line)
    assert found and printed, line
    right = {**engine.env, "CONCORDAT_TOKEN": engine.token_of("jcu_lead:jo")}
    again = cli(right, *start, "--parties", "PCC", "--as", "jcu_lead:jo", "--command-id", printed.group(1))
    assert again.returncode == 0 and again.stdout.strip() == found.group(1), again.stderr
    # The workflow runs: the JCU's decision is taken by it.
    decided = engine.ok("decide", found.group(1), "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
    assert "approved" in decided
    listed = engine.ok("list", "--json", who="auditor:audrey")
    assert [c["reference"] for c in json.loads(listed)].count(found.group(1)) == 1
    assert "Half started" in listed and listed.count("Half started") == 1
