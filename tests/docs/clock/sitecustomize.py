"""Test-only: this process's wall clock follows Temporal's time-skipping test server.

tests/docs/clocked.py runs a walk-through whose weeks pass on Temporal's time-skipping test server.
Every `concordat` process of that run (the page's commands, and `concordat up` with its worker, web
app and runners) is started with this directory on PYTHONPATH and CONCORDAT_TEST_CLOCK naming a file
that holds `GENERATION OFFSET`: the server's time minus the real time, in seconds. Python imports this
module at start-up (`site`), and from then on the process's `datetime.now()` and `time.time()` are
the real time plus that offset (time-machine, ticking). A thread follows the file: when the harness
lets weeks pass and writes a new offset, long-running processes move with it and say so in
`<file>.seen/<pid>` (the harness waits for every live process to have seen it). Nothing outside
tests/ can reach this: production code has no way to move its clock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

POLL_SECONDS = 0.05


def _read(path: Path) -> tuple[int, float]:
    generation, offset = path.read_text().split()
    return int(generation), float(offset)


def _follow(path: Path) -> None:
    import time

    import time_machine

    seen = Path(str(path) + ".seen")
    seen.mkdir(exist_ok=True)
    generation, offset = _read(path)
    traveller = time_machine.travel(time.time() + offset, tick=True).start()
    (seen / str(os.getpid())).write_text(str(generation))

    def watch() -> None:
        nonlocal generation, offset
        stop = threading.Event()
        while not stop.wait(POLL_SECONDS):
            try:
                now_generation, now_offset = _read(path)
            except (OSError, ValueError):
                continue  # being replaced: read it next time
            if now_generation != generation:
                traveller.shift(now_offset - offset)
                generation, offset = now_generation, now_offset
                (seen / str(os.getpid())).write_text(str(generation))

    threading.Thread(target=watch, name="test-clock", daemon=True).start()


_clock = os.environ.get("CONCORDAT_TEST_CLOCK")
if _clock:
    _follow(Path(_clock))
