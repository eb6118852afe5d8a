"""Whether a server could listen on a port now: the one check `up` and `serve` make before starting.

The check binds with SO_REUSEADDR, as uvicorn and Temporal's server do when they listen. Without it,
a port whose last connections are in TIME_WAIT (for a minute or so after a server that a browser or
a keep-alive client was connected to stops) counts as taken, and a restart right after Ctrl-C is
refused although the server itself would start. With it, the bind still fails while a live listener
holds the port: on Linux and the BSDs SO_REUSEADDR never lets a second socket bind beside one that
listens. Windows lets a port in TIME_WAIT be bound anyway, and there SO_REUSEADDR would let us bind
beside a live listener, so it is not set.
"""

from __future__ import annotations

import os
import socket


def is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name != "nt":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
