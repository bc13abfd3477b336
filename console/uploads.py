"""A console form that carries a file: the size limit of an upload (the settings' ``max_upload_mb``, the API's) and
the CSRF token, checked before any work is done with the file.

FastAPI reads a whole multipart body before the route runs when the route declares form fields; the console's
upload routes declare none and call :func:`read_upload` instead, after the signed-in user and the role are
checked (a stranger's or a planner's upload is refused before a byte of its body is read). It refuses a declared
``Content-Length`` over the limit at once, reads the body through a ``receive`` that stops at the limit however
the body is framed, checks the form's CSRF token (``auth.require_csrf``) and the file's own size exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message

from yizhan.accounts.sessions import SignedIn
from yizhan.console.auth import require_csrf
from yizhan.errors import InvalidInput, PayloadTooLarge
from yizhan.settings import Settings

ENVELOPE_BYTES = 64 * 1024
"""Bytes a body may carry above the file limit: the multipart boundaries, part headers and the form's fields."""
FILE_FIELD = "file"
"""The form field holding the file."""
MAX_FIELDS = 20
"""Form fields an upload form may have besides its file."""


class BodyCut(Exception):
    """The body passed the limit while it was read."""


@dataclass
class Upload:
    """An uploaded file: its name as the browser sent it (the suffix says its format), its bytes, and the form's
    other fields (text)."""

    name: str
    data: bytes
    fields: dict[str, str]


def too_large(settings: Settings) -> PayloadTooLarge:
    """The error of an upload over the settings' limit, naming the limit in MB (413)."""
    mb = f"{settings.max_upload_mb:g}"
    return PayloadTooLarge(f"文件超过 {mb} MB 的上传上限，请拆分文件 / file: larger than the {mb} MB limit of an "
                           "upload (YIZHAN_MAX_UPLOAD_MB); split the file or ask for a larger limit")


async def read_upload(request: Request, user: SignedIn, settings: Settings, *, file_field: str = FILE_FIELD,
                      file_required: bool = True) -> Upload:
    """The posted form's file and fields, once the body is within the limit and the CSRF token is the session's.

    Raises ``PayloadTooLarge`` (a declared length, the body or the file over ``settings.max_upload_mb`` MB),
    ``auth.CsrfRefused`` (403) and ``InvalidInput`` (no file chosen). The file is the form's ``file_field``; when
    ``file_required`` is false a form without one gives an ``Upload`` with an empty name and no bytes."""
    limit = int(settings.max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise too_large(settings)
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit + ENVELOPE_BYTES:
                raise BodyCut
        return message

    limited = Request(request.scope, limited_receive)
    try:
        # parsed once, with the limits (a request keeps the first form it parsed, so no earlier parse may come first)
        form: FormData = await limited.form(max_files=1, max_fields=MAX_FIELDS)
    except BodyCut:
        raise too_large(settings) from None
    try:
        require_csrf(form, user)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        file = form.get(file_field)
        if not isinstance(file, UploadFile) or not file.filename:
            if not file_required:
                return Upload("", b"", fields)
            raise InvalidInput(f"{file_field}: 请选择要上传的文件 / choose a file to upload")
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise too_large(settings)
        return Upload(file.filename, data, fields)
    finally:
        await form.close()
