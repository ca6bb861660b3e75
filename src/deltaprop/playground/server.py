"""Serving the playground: bind the port, run uvicorn until Ctrl-C, open the browser.

``deltaprop playground`` (in ``cli``) calls these in order: :func:`bind` (so a port in use is
a clear error before anything starts, and ``--port 0`` has its real port), :func:`url`,
:func:`open_browser`, then :func:`serve`, which returns when the server has stopped.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser
from typing import Any

from deltaprop.errors import DeltapropError
from deltaprop.playground.app import LOOPBACK, create_app
from deltaprop.playground.session import Session

__all__ = ["Session", "bind", "is_loopback", "make_server", "open_browser", "serve", "url"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeError(DeltapropError, OSError):
    """The server cannot listen where it was asked (a port in use, an unknown address)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Raises
    ------
    ServeError
        One line naming the address, e.g. when the port is in use.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        reason = (e.strerror or str(e)).lower()
        raise ServeError(f"cannot serve on {host}:{port}: {reason}") from None
    return sock


def url(host: str, sock: socket.socket) -> str:
    """``http://HOST:PORT/`` with the socket's real port."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def open_browser(address: str) -> None:
    """Open ``address`` in the default browser, off the main thread (it may block)."""
    for wildcard in ("0.0.0.0", "[::]"):
        address = address.replace(wildcard, "127.0.0.1")
    threading.Thread(target=webbrowser.open, args=(address,), daemon=True).start()


def make_server(session: Session, host: str) -> Any:
    """A ``uvicorn.Server`` for the playground's app; ``run(sockets=[sock])`` serves it."""
    import uvicorn

    if host in ("0.0.0.0", "::"):
        hosts = None  # any name reaches it: the CLI has warned
    else:
        hosts = (*LOOPBACK, host.strip("[]"))
    config = uvicorn.Config(create_app(session, hosts=hosts), log_level="warning",
                            ws="websockets-sansio", lifespan="on", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(session: Session, sock: socket.socket, host: str) -> None:
    """Run the app on ``sock`` until the server stops (Ctrl-C)."""
    make_server(session, host).run(sockets=[sock])
