"""The guard of the upload routes: the staff key is checked and the size limit applied before a byte of the body
is read.

FastAPI reads (and spools to disk) a whole multipart body before any dependency of the route runs, so the route's
own key check comes too late for a stranger's 400 MB upload. ``UploadGuard`` is a pure ASGI middleware in front of
the routes of ``GUARDED``: it answers 401 for a missing or invalid ``X-API-Key``, 413 for a ``Content-Length``
over the limit, and otherwise passes the request on with a ``receive`` that stops at the limit (413) however the
body is framed (a declared length or chunked).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yizhan.db.lifecycle import Database
from yizhan.errors import DATABASE_DOWN_ERRORS, PayloadTooLarge, YizhanError, as_unavailable, domain_response
from yizhan.routes.deps import check_staff_key
from yizhan.settings import Settings
from yizhan.stations.memindex import IndexKeeper

GUARDED = frozenset({("POST", "/stations/import")})
"""(method, path) of the routes whose body is an upload limited by the settings' ``max_upload_mb``."""
ENVELOPE_BYTES = 64 * 1024
"""Bytes a body may carry above the file limit: the multipart boundaries, part headers and form fields. The
route checks the file itself against the limit exactly."""


def too_large(settings: Settings) -> PayloadTooLarge:
    """The error of an upload over the settings' limit, naming the limit in MB."""
    return PayloadTooLarge(f"file: larger than the {settings.max_upload_mb:g} MB limit of an upload "
                           "(YIZHAN_MAX_UPLOAD_MB); split the file or ask for a larger limit")


def _route_path(scope: Scope) -> str:
    """The request's path as the routes declare it (without the ``root_path`` a proxy serves the app under)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes the limit. An HTTPException, because FastAPI turns any other
    error met while parsing a body into a 400."""

    def __init__(self, error: PayloadTooLarge) -> None:
        super().__init__(status_code=413, detail=str(error))


class UploadGuard:
    """ASGI middleware: the staff key, then the body's size, of the requests to ``GUARDED`` routes."""

    def __init__(self, app: ASGIApp, *, settings: Settings, database: Database[IndexKeeper]) -> None:
        self.app = app
        self.settings = settings
        self.database = database
        self.limit = int(settings.max_upload_mb * 1024 * 1024) + ENVELOPE_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], _route_path(scope)) not in GUARDED:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            await run_in_threadpool(self._check_key, headers.get("x-api-key"))
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                raise too_large(self.settings)
        except YizhanError as exc:
            await self._refuse(exc, scope, receive, send)
            return
        cut = [False]

        async def send_closing(message: Message) -> None:
            if cut[0] and message["type"] == "http.response.start":  # the 413: the rest of the body is not read
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, self._limited(receive, cut), send_closing)

    def _check_key(self, key: str | None) -> None:
        try:
            check_staff_key(self.database.engine(), self.settings, key)
        except DATABASE_DOWN_ERRORS as exc:
            raise as_unavailable(exc) from exc

    def _limited(self, receive: Receive, cut: list[bool]) -> Receive:
        """``receive`` that raises 413 as soon as the body passes the limit (and sets ``cut[0]``)."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    cut[0] = True
                    raise _BodyTooLarge(too_large(self.settings))
            return message

        return limited_receive

    @staticmethod
    async def _refuse(exc: YizhanError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``exc`` and close the connection: the unread body is not waited for."""
        response = domain_response(exc)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
