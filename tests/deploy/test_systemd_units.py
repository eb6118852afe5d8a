"""The systemd units in deploy/systemd run real commands of the CLI with real settings, and systemd
itself accepts them (`systemd-analyze verify`, where the machine has it: an unknown key, a bad value
or a command that is not there fails the test)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from concordat.cli import app
from concordat.settings import Settings

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED = "/opt/concordat/bin/concordat"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("path", SERVICES, ids=[p.name for p in SERVICES])
def test_each_unit_runs_a_command_of_the_cli_with_real_settings(path: Path) -> None:
    service = unit(path)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED
    command = app.commands[argv[1]]
    with click.Context(command) as ctx:
        command.parse_args(ctx, argv[2:])  # raises on an option the command does not take
    for line in service["Environment"].splitlines():
        name = line.split("=", 1)[0]
        assert name.startswith("CONCORDAT_") and name.removeprefix("CONCORDAT_").lower() in Settings.model_fields
    assert service["User"] != "root" and service["UMask"] == "0077"
    assert unit(path)["Unit"]["PartOf"] == "concordat.target"


def test_the_target_starts_every_service() -> None:
    wants = set(unit(UNITS / "concordat.target")["Unit"]["Wants"].split())
    assert wants == {p.name for p in SERVICES}
    commands = {shlex.split(unit(p)["Service"]["ExecStart"])[1] for p in SERVICES}
    assert commands == {"migrate", "worker", "projections", "outbox", "serve"}
    # The store's tables are made once, before any process opens the store.
    for path in SERVICES:
        if path.name != "concordat-migrate.service":
            assert unit(path)["Unit"]["Requires"] == "concordat-migrate.service"
            assert "concordat-migrate.service" in unit(path)["Unit"]["After"].split()
    assert unit(UNITS / "concordat-migrate.service")["Service"]["Type"] == "oneshot"


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the parse checks above still ran
        return
    concordat = str(Path(sys.executable).parent / "concordat")  # the installed path, here
    for path in [*SERVICES, UNITS / "concordat.target"]:
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED, concordat))
    done = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stderr + done.stdout
