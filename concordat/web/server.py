"""`concordat serve`: the web app under uvicorn, on one address."""

from __future__ import annotations

import sys

import uvicorn

from concordat import logs, ports
from concordat.settings import Settings
from concordat.web.app import create_app


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"HTTP address {address!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(settings: Settings, address: str, *, secure_cookies: bool = False) -> int:
    try:
        host, port = split_address(address)
    except ValueError as err:
        sys.stderr.write(f"concordat: {err}\n")
        return 2
    if not ports.is_free(host, port):
        sys.stderr.write(
            f"concordat: port {port} on {host} is taken — is another `concordat serve` or `concordat up` "
            "running? Give --address HOST:PORT or set CONCORDAT_HTTP_ADDRESS\n"
        )
        return 1
    app = create_app(settings, secure_cookies=secure_cookies)

    def say(text: str) -> None:
        logs.say(text, settings.log_format, "concordat.serve")

    say(f"web          http://{host}:{port}/  (API http://{host}:{port}/api/v1/docs)")
    if not app.state.commands.directory.has_users():
        say("no users yet: create the first administrator, who then adds everyone else")
        say("  concordat user add ID --role admin --password-stdin")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        # uvicorn's own lines go through our logging (configured by the CLI from the settings), so
        # with CONCORDAT_LOG_FORMAT=json they are JSON lines like the rest.
        log_config=None,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
