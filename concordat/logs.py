"""structlog set-up: JSON lines in production, a console renderer in development, to stderr.

Context (case reference, workflow id, actor) is bound with structlog's contextvars by the code that
knows it, so every line inside a command carries it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(fmt: str = "console", level: str = "warning") -> None:
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    # Temporal's SDK and eventsourcing log through the standard library: same stream, same level.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer], foreign_pre_chain=shared
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])


class _StderrLoggerFactory:
    """Print loggers on `sys.stderr` as it is when a line is written, not when logging was configured:
    a command run in process (a test's captured stream, since closed) must not leave structlog writing
    to a stream that no longer exists."""

    def __call__(self, *args: object) -> structlog.PrintLogger:
        return structlog.PrintLogger(file=sys.stderr)


def say(text: str, fmt: str, logger: str) -> None:
    """A line for the person who started a process (what it started, where): as it is on a console, and
    with `CONCORDAT_LOG_FORMAT=json` a JSON line like every other log line, so a log shipper reads all
    of a process's output. On stdout, flushed at once (a supervisor waits for these lines)."""
    if fmt == "json":
        text = json.dumps(
            {"event": text, "level": "info", "logger": logger, "timestamp": datetime.now(UTC).isoformat()},
            ensure_ascii=False,
        )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
