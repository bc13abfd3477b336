"""Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a background thread, for real-HTTP tests.

    with live_server(create_app(settings)) as base_url:
        httpx.get(f"{base_url}/healthz")

    with serve_api(settings) as client:  # yizhan's API: an httpx client bound to it, the app's engines disposed
        client.get("/healthz")

Tests take the ``live_api`` fixture (conftest), which serves ``serve_api`` for the length of the test.

Unhandled exceptions of the app (the cause of a 500) are kept and written to stderr, formatted, when the block
ends, so pytest shows them with a failing test. They are deliberately not logged by uvicorn in the server
thread: formatting a traceback runs ``ast.parse`` there (Python 3.11's traceback module uses it for its ``^^^``
markers), and pytest attaches its log capture to every logger, so that would happen while pytest renders the
failing test's own traceback in the main thread. Two threads in ``ast.parse`` at once trip CPython 3.11 bug
gh-106905 ("SystemError: AST constructor recursion depth mismatch"), which aborts the run as an INTERNALERROR.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn


class _KeepErrors:
    """ASGI wrapper: unhandled HTTP exceptions are kept instead of propagating to uvicorn's error log.

    Starlette has already answered 500 when one arrives here; if nothing was sent, uvicorn answers 500 itself.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[BaseException] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(exc)


@contextlib.contextmanager
def live_server(app: Any, *, startup_timeout: float = 20.0, log_level: str = "warning") -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    The listening socket is bound before the server starts (port 0), so there is no race for the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    wrapped = _KeepErrors(app)
    config = uvicorn.Config(wrapped, log_config=None, log_level=log_level, lifespan="on", access_log=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"uvicorn-{port}", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the test server did not start: {failure[0] if failure else 'thread exited'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start within {startup_timeout} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        for exc in wrapped.errors:
            sys.stderr.write("[test server] unhandled exception behind a 500:\n"
                             + "".join(traceback.format_exception(exc)))
        wrapped.errors.clear()
    if thread.is_alive():
        raise RuntimeError("the test server did not stop within 15 s")


@contextlib.contextmanager
def serve_api(settings: Any, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    """Serve yizhan's API built with ``settings`` (a ``yizhan.settings.Settings``) until the block ends; yields an
    httpx client bound to it (``timeout`` in seconds). The app's database connections are closed afterwards."""
    from yizhan.api import create_app

    app = create_app(settings)
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=timeout) as client:
            yield client
    finally:
        app.state.db.dispose()
