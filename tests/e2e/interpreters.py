"""The Pythons the README's commands are checked with: each that this machine has, of 3.11 or newer.

- `system`: the distribution's own (`/usr/bin/python3`; Debian's and Ubuntu's are "externally
  managed", PEP 668, which is what made `pip install uv` fail for a newcomer).
- `pyenv` (or `tests-python` when it is not pyenv's): the interpreter the tests run under, outside
  their virtual environment (`sys.base_prefix`). Nothing can be downloaded here but packages, so no
  other Python is fetched for the check.

An interpreter that is absent or too old is left out of the parametrisation, with a note in the
test run's header (`left_out`), never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SYSTEM = Path("/usr/bin/python3")
OLDEST = (3, 11)


def version(python: Path) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    major, minor = done.stdout.split()
    return int(major), int(minor)


def _own() -> tuple[str, Path]:
    python = Path(sys.base_prefix) / "bin" / "python3"
    pyenv_root = os.environ.get("PYENV_ROOT")
    if pyenv_root and python.resolve().is_relative_to(Path(pyenv_root).resolve()):
        return "pyenv", python
    return "tests-python", python


def found() -> tuple[dict[str, Path], list[str]]:
    """The interpreters to check with, by name, and a note for each left out."""
    chosen: dict[str, Path] = {}
    left_out: list[str] = []
    for name, python in (("system", SYSTEM), _own()):
        if not python.exists():
            left_out.append(f"{name}: {python} is absent")
            continue
        seen = version(python)
        if seen is None or seen < OLDEST:
            left_out.append(f"{name}: {python} is {'.'.join(map(str, seen)) if seen else 'not runnable'}, not 3.11+")
            continue
        if any(python.resolve() == other.resolve() for other in chosen.values()):
            left_out.append(f"{name}: {python} is the same interpreter as another already checked")
            continue
        chosen[name] = python
    return chosen, left_out
