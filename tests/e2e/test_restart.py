"""Restarting at once: a port left in TIME_WAIT by the last run is free; a live listener is not."""

from __future__ import annotations

import errno
import http.client
import signal
import socket
from pathlib import Path

from concordat import ports
from tests.e2e.conftest import _env, free_port, running_engine


def plain_bind_fails(port: int) -> bool:
    """Whether a bind without SO_REUSEADDR (the old check) is refused on this port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            assert err.errno == errno.EADDRINUSE
            return True
    return False


def leave_in_time_wait() -> int:
    """A port whose server closed a connection first and stopped listening: what a server with a
    browser connected leaves behind when it stops. The server listened with SO_REUSEADDR, as uvicorn
    and Temporal do (Linux lets a new bind reuse a TIME_WAIT port only when both sockets set it)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the server closes first: its side of the connection goes to TIME_WAIT
            client.recv(1)  # the server's FIN
    return port


def test_a_port_in_time_wait_is_free_for_the_next_start() -> None:
    port = leave_in_time_wait()
    assert plain_bind_fails(port)  # the connection is in TIME_WAIT: without SO_REUSEADDR, "taken"
    assert ports.is_free("127.0.0.1", port)


def test_a_port_with_a_live_listener_is_taken() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and Temporal listen
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not ports.is_free("127.0.0.1", listener.getsockname()[1])


def test_a_port_bound_by_another_socket_without_reuse_is_taken() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        assert not ports.is_free("127.0.0.1", holder.getsockname()[1])


def test_up_starts_again_at_once_after_ctrl_c_with_a_browser_connected(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    web_port = int(env["CONCORDAT_HTTP_ADDRESS"].rsplit(":", 1)[1])
    with running_engine(tmp_path, env) as first:
        browser = http.client.HTTPConnection("127.0.0.1", web_port, timeout=10)
        browser.request("GET", "/healthz")  # a keep-alive connection, held open as a browser holds it
        assert browser.getresponse().read() is not None
        first.process.send_signal(signal.SIGINT)
        assert first.process.wait(timeout=60) == 0
        browser.close()
    assert plain_bind_fails(web_port)  # the web port is in TIME_WAIT, as a restart finds it
    with running_engine(tmp_path, env) as second:
        assert any(line.startswith("ready") for line in second.lines)
