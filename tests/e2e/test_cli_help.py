"""Every command's `--help` works and says what the command does; every command that prints a result
takes `--json` unless docs/cli.md lists it (with the reason); the exit codes the CLI uses are the ones
docs/cli.md documents."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from concordat import cli, health
from concordat.cli import app

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()


def commands(group: click.Group = app, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def section(title: str) -> str:
    return CLI_DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def without_json() -> set[str]:
    """The commands docs/cli.md says take no --json."""
    return {m[1] for m in re.finditer(r"^\| `concordat ([a-z -]+)` \|", section("Output"), re.M)}


def test_every_command_has_help_that_says_what_it_does_and_json_where_it_prints() -> None:
    runner = CliRunner()
    seen = set()
    for path, command in commands():
        done = runner.invoke(app, [*path, "--help"], prog_name="concordat")
        assert done.exit_code == 0, (path, done.output)
        assert done.output.startswith(f"Usage: concordat {' '.join(path)}"), done.output
        assert (command.help or "").strip(), f"`concordat {' '.join(path)}` has no description"
        if isinstance(command, click.Group) and not command.invoke_without_command:
            continue  # a group alone prints nothing but its help
        name = " ".join(path)
        seen.add(name)
        takes_json = "--json" in done.output
        assert takes_json != (name in without_json()), (
            f"`concordat {name}` {'takes' if takes_json else 'takes no'} --json, which docs/cli.md "
            f"{'lists as taking none' if takes_json else 'does not say'}"
        )
    assert without_json() <= seen, "docs/cli.md lists commands the CLI does not have"


def exit_codes_used() -> set[int]:
    """Every code the CLI's boundary (`_fail`, `Failure`, `SystemExit`) exits with, read from its source."""
    codes = {0}
    for module in (cli, health):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id in {"_fail", "Failure"} and len(node.args) > 1:
                argument = node.args[1]
            elif node.func.id == "SystemExit" and node.args:
                argument = node.args[0]
            else:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, int):
                codes.add(argument.value)
    return codes


def test_the_exit_codes_used_are_the_ones_documented() -> None:
    documented = {int(m[1]) for m in re.finditer(r"^\| (\d+) \|", section("Exit codes"), re.M)}
    assert exit_codes_used() == documented
    assert {1, 2, 69, 70, 75} <= documented  # refusal, usage, dependency, internal, temporary
