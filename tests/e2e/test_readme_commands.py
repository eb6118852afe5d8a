"""The README's two commands, exactly as it writes them, on a fresh clone with an empty HOME and a bare
PATH (the chosen Python's directory and git's), with each Python this machine has (`interpreters`):
Debian's externally managed system Python where there is one, and the tests' own (pyenv's here).

- The first (`./uv run --no-dev concordat up`) runs until the engine answers on its health URL, and
  is stopped as Ctrl-C would (SIGINT to its process group). It installs the engine's runtime
  dependencies and nothing of the tests'.
- The second (`./uv run pytest`) runs with `--collect-only -q` added (the README's command takes
  pytest's arguments): running the whole suite inside the suite is not sensible, but collecting it
  imports every test module and conftest, so it proves the command installs everything the tests
  need.

What is cloned is HEAD: uncommitted changes are not in the clone (on CI there are none). The uv
cache is shared (UV_CACHE_DIR) so nothing is downloaded twice; `./uv` fetches uv itself with the
chosen Python's pip, as a newcomer's first run does. The engine's ports are set by environment
(CONCORDAT_HTTP_ADDRESS and the Temporal ones) so the check cannot clash with another engine; the
command stays as written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.interpreters import found

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
INTERPRETERS, LEFT_OUT = found()
# Carried over from the machine: how pip and uv reach the package registry and trust it, the locale.
KEPT = re.compile(r"^(PIP_|UV_|SSL_CERT_|REQUESTS_CA_BUNDLE$|CURL_CA_BUNDLE$|(HTTPS?|NO)_PROXY$|LANG$|LC_)", re.I)
START_TIMEOUT = 600  # the first run installs uv and the engine's dependencies (from the shared cache)


def blocks(text: str, language: str) -> list[list[str]]:
    found_blocks = re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)
    return [block.splitlines() for block in found_blocks]


def readme_commands() -> tuple[str, str]:
    """The README's first command (the first `$ ` line of its first console block) and its test
    command (the first line of the sh block under "## Tests", without its comment)."""
    text = README.read_text()
    first = next(line[2:] for line in blocks(text, "console")[0] if line.startswith("$ "))
    tests = text[text.index("\n## Tests") :]
    second = blocks(tests, "sh")[0][0].split("#", 1)[0].strip()
    return first, second


def uv_cache_dir() -> str:
    if os.environ.get("UV_CACHE_DIR"):
        return os.environ["UV_CACHE_DIR"]
    uv = ROOT / ".uv" / "bin" / "uv"
    binary = str(uv) if uv.exists() else shutil.which("uv")
    assert binary, "no uv to ask for its cache (run the tests with ./uv run pytest)"
    return subprocess.run([binary, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()


def fresh_env(python: Path, home: Path) -> dict[str, str]:
    git = shutil.which("git")
    assert git, "git is needed to clone"
    path = [str(python.parent)] + [d for d in (str(Path(git).parent),) if d != str(python.parent)]
    # Not what `uv run pytest` set for the tests themselves: the clone's uv starts afresh.
    env = {k: v for k, v in os.environ.items() if KEPT.match(k) and k != "UV_RUN_RECURSION_DEPTH"}
    env.update(HOME=str(home), PATH=os.pathsep.join(path), UV_CACHE_DIR=uv_cache_dir())
    return env


def test_the_readme_names_two_commands() -> None:
    first, second = readme_commands()
    assert first == "./uv run --no-dev concordat up"
    assert second == "./uv run pytest"


@pytest.mark.parametrize("python", list(INTERPRETERS.values()), ids=list(INTERPRETERS))
def test_the_readme_commands_work_on_a_fresh_clone_with_an_empty_home(python: Path, tmp_path: Path) -> None:
    first, second = readme_commands()
    clone, home = tmp_path / "concordat", tmp_path / "home"
    home.mkdir(mode=0o700)
    env = fresh_env(python, home)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], env=env, check=True, timeout=120)

    web = f"127.0.0.1:{free_port()}"
    engine = {
        **env,
        "CONCORDAT_HTTP_ADDRESS": web,
        "CONCORDAT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "CONCORDAT_TEMPORAL_UI_PORT": str(free_port()),
    }
    up = subprocess.Popen(
        ["/bin/sh", "-c", first],
        cwd=clone,
        env=engine,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which Ctrl-C (SIGINT) reaches as a whole
    )
    lines: list[str] = []
    settled = threading.Event()

    def read() -> None:
        for line in up.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if line.startswith("ready"):
                settled.set()
        settled.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert settled.wait(START_TIMEOUT), "`up` neither got ready nor ended:\n" + "\n".join(lines)
        assert any(line.startswith("ready") for line in lines), "\n".join(lines)
        with urllib.request.urlopen(f"http://{web}/healthz", timeout=10) as answer:  # noqa: S310 - our own URL
            assert answer.status == 200
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)  # Ctrl-C
            try:
                up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    # `up` stops everything and says so; `uv run` then ends as its child did, by the SIGINT (a shell shows 130).
    assert lines[-1] == "stopped", "\n".join(lines)
    assert up.returncode in (0, 130, -signal.SIGINT), f"`up` exited {up.returncode} on Ctrl-C:\n" + "\n".join(lines)
    venv = clone / ".venv"
    assert (venv / "bin" / "concordat").exists()
    assert not (venv / "bin" / "pytest").exists(), "--no-dev installed the test dependencies"
    home_line = next(line for line in (venv / "pyvenv.cfg").read_text().splitlines() if line.startswith("home"))
    assert Path(home_line.split("=", 1)[1].strip()).resolve() == python.parent.resolve(), home_line

    collected = subprocess.run(
        ["/bin/sh", "-c", f"{second} --collect-only -q -p no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    count = re.search(r"^(\d+) tests? collected", collected.stdout, flags=re.M)
    assert count and int(count[1]) > 500, collected.stdout[-2000:]
    assert (venv / "bin" / "pytest").exists() and (venv / "bin" / "playwright").exists()
