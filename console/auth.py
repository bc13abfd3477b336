"""The console's FastAPI dependencies: who is signed in, which role a page needs, and the CSRF check of every form.

- ``SignedInUser``: the signed-in user (``accounts.sessions.SignedIn``). A request without a valid session raises
  :class:`SignInRequired`, which ``console.install`` answers with a 303 to ``/console/signin?next=<this path>``.
- ``require_role("admin")`` (``AdminUser`` for short): the same user, or :class:`RoleRequired`, answered with a 403
  page in Chinese and English naming the role needed.
- ``CsrfChecked``: a POST form's ``csrf_token`` field equals the session's token, else :class:`CsrfRefused`
  (403). Every console form carries it as a hidden field (``{{ csrf_field }}`` of the layout's context).
- ``UserOrKey``: a signed-in user (any role) or a valid staff ``X-API-Key`` (scripts); a browser without either is
  sent to sign in, another client gets 401. ``/map`` uses it.

The session is the ``SESSION_COOKIE`` cookie (HttpOnly, SameSite=Lax, Secure when the request came over https,
which behind a reverse proxy means one of the settings' ``trusted_proxies`` said so). The instant the session's
expiry is judged at comes from :func:`request_now`: ``app.state.console_clock`` when set (tests move the clock so),
else the current UTC time.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency signatures at run time.
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.datastructures import FormData

from yizhan.accounts.sessions import SignedIn, session_user
from yizhan.accounts.users import ROLES
from yizhan.errors import DATABASE_DOWN_ERRORS, DatabaseUnavailable, Unauthorized, as_unavailable
from yizhan.keys import key_is_valid
from yizhan.settings import Settings

SESSION_COOKIE = "yizhan_session"
"""The cookie holding the session token."""
SIGNIN_PATH = "/console/signin"
HOME_PATH = "/console"
NOT_LOOKED_UP = object()
"""``request.state.console_user`` before the session was looked up."""
CSRF_FIELD = "csrf_token"
"""The hidden form field that carries the session's CSRF token."""


class SignInRequired(Exception):
    """No valid session: the browser is sent to sign in, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class RoleRequired(Exception):
    """The signed-in user's role may not open this page; ``roles`` are those that may."""

    def __init__(self, user: SignedIn, roles: tuple[str, ...]) -> None:
        super().__init__(", ".join(roles))
        self.user = user
        self.roles = roles


class CsrfRefused(Exception):
    """A form was posted without the session's CSRF token, or with another one."""


class ConsoleUnavailable(DatabaseUnavailable):
    """The database cannot be reached while the console asks who is signed in: a page in Chinese and English for a
    browser (503), the API's JSON answer for any other client."""


def request_now(request: Request) -> datetime:
    """The instant (aware, UTC) sessions are judged at: ``app.state.console_clock()`` when the app has one."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "console_clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def console_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


def console_engine(request: Request) -> Engine:
    """The app's engine (ConsoleUnavailable, 503, while the database cannot be reached)."""
    try:
        eng: Engine = request.app.state.db.engine()
    except DatabaseUnavailable as exc:
        raise ConsoleUnavailable(str(exc)) from exc
    return eng


def local_path(value: str | None, default: str = HOME_PATH) -> str:
    """``value`` if it is a path on this site (``/console/runs?x=1``), else ``default``: never another host
    (``//evil.example``, ``https://…``, ``/\\evil``), never a control character."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 32 or c == "\\" for c in value) or len(value) > 2000:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def this_path(request: Request) -> str:
    """The request's own path and query, to come back to after signing in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def signin_url(next_path: str) -> str:
    """The sign-in page that leads back to ``next_path``."""
    return f"{SIGNIN_PATH}?next={quote(local_path(next_path), safe='/')}"


def current_user(request: Request) -> SignedIn | None:
    """The signed-in user of the request's session cookie, or None (looked up once per request)."""
    found = getattr(request.state, "console_user", NOT_LOOKED_UP)
    if found is None or isinstance(found, SignedIn):
        return found
    token = request.cookies.get(SESSION_COOKIE)
    user = None
    if token:
        try:
            with console_engine(request).begin() as conn:
                user = session_user(conn, token, console_settings(request), now=request_now(request))
        except DATABASE_DOWN_ERRORS as exc:
            raise ConsoleUnavailable(str(as_unavailable(exc))) from exc
    request.state.console_user = user
    return user


def require_user(request: Request) -> SignedIn:
    """The signed-in user; SignInRequired (a 303 to the sign-in page) without a valid session."""
    user = current_user(request)
    if user is None:
        raise SignInRequired(this_path(request))
    return user


SignedInUser = Annotated[SignedIn, Depends(require_user)]
"""A console page's parameter: the signed-in user (any role)."""


def require_role(*roles: str) -> Callable[[SignedIn], SignedIn]:
    """A dependency: the signed-in user when the role is one of ``roles``, else RoleRequired (a 403 page)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles {unknown or roles!r}: expected some of {', '.join(ROLES)}")

    def role_of(user: SignedInUser) -> SignedIn:
        if user.role not in roles:
            raise RoleRequired(user, roles)
        return user

    return role_of


AdminUser = Annotated[SignedIn, Depends(require_role("admin"))]
"""A console page's parameter: the signed-in user, who is an admin."""


def require_csrf(form: FormData, user: SignedIn) -> None:
    """CsrfRefused unless the parsed ``form``'s ``csrf_token`` is ``user``'s session's."""
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise CsrfRefused


async def check_csrf(request: Request, user: SignedInUser) -> SignedIn:
    """The signed-in user, once the posted form's ``csrf_token`` matches the session's; CsrfRefused otherwise."""
    require_csrf(await request.form(), user)
    return user


CsrfChecked = Annotated[SignedIn, Depends(check_csrf)]
"""A console form handler's parameter: the signed-in user, whose form carried the session's CSRF token."""


def wants_html(request: Request) -> bool:
    """Whether the client is a browser navigating (it accepts ``text/html``)."""
    return "text/html" in request.headers.get("accept", "")


def require_user_or_key(request: Request,
                        x_api_key: Annotated[str | None, Header(description="Staff API key (scripts)")] = None
                        ) -> SignedIn | None:
    """The signed-in user, or None when the request carries a valid staff ``X-API-Key`` instead; without either,
    SignInRequired for a browser (303 to sign in) and Unauthorized (401) for any other client."""
    user = current_user(request)
    if user is not None:
        return user
    if x_api_key:
        settings = console_settings(request)
        extra = settings.staff_key.get_secret_value() if settings.staff_key is not None else None
        with console_engine(request).connect() as conn:
            if key_is_valid(conn, x_api_key, extra=extra):
                return None
    if wants_html(request):
        raise SignInRequired(this_path(request))
    raise Unauthorized("请先登录控制台，或提供员工密钥 / sign in to the console (/console/signin) or send a valid "
                       "X-API-Key header")


UserOrKey = Annotated[SignedIn | None, Depends(require_user_or_key)]
"""A page's parameter for pages that scripts also fetch: the signed-in user, or None with a valid staff key."""


def set_session_cookie(response: Response, request: Request, token: str, settings: Settings) -> None:
    """Give the browser the session ``token``: HttpOnly, SameSite=Lax, Secure over https, for the whole site, kept
    at most the session's absolute lifetime."""
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.session_max_hours * 3600), path="/",
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")


def clear_session_cookie(response: Response, request: Request) -> None:
    """Make the browser forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")

