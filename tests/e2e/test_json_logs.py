"""With CONCORDAT_LOG_FORMAT=json, every line every process writes is a JSON object: `up`'s banner,
the web app's (uvicorn's own lines too), the worker's, the projection runner's and Temporal's dev
server's, so a log shipper needs no second parser."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.e2e.conftest import START_TIMEOUT, _env, free_port


def test_every_process_logs_json_lines_when_asked(tmp_path: Path) -> None:
    env = {**_env(tmp_path, free_port()), "CONCORDAT_LOG_FORMAT": "json", "CONCORDAT_LOG_LEVEL": "info"}
    up = subprocess.Popen(
        [sys.executable, "-m", "concordat", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in up.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if '"event": "ready' in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(START_TIMEOUT) and any('"event": "ready' in line for line in lines), "".join(lines)
    finally:
        up.send_signal(signal.SIGINT)
        _, errors = up.communicate(timeout=90)
    assert up.returncode == 0, errors

    def objects(text: str, where: str) -> list[dict[str, object]]:
        found = []
        for line in text.splitlines():
            if line.strip():
                try:
                    found.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"{where}: not a JSON line: {line!r}") from None
        return found

    banner = objects("".join(lines), "up's stdout")
    assert any(str(o["event"]).startswith("web ") for o in banner)
    objects(errors, "up's stderr")
    logs = Path(env["CONCORDAT_DATA_DIR"]) / "logs"
    web = objects((logs / "web.log").read_text(), "web.log")
    assert any("Uvicorn running" in str(o.get("event")) for o in web), web  # uvicorn's own line, as JSON
    assert any(str(o.get("event", "")).startswith("web ") for o in web)  # the serve banner
    for name in ("worker.log", "projections.log", "temporal.log"):
        objects((logs / name).read_text(), name)
