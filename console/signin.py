"""``GET/POST /console/signin`` and ``POST /console/signout``.

The sign-in form is itself protected against cross-site posts: ``GET`` puts a random token both in a cookie
(``SIGNIN_CSRF_COOKIE``, HttpOnly, only sent to the sign-in page) and in the form's hidden field, and ``POST``
refuses a form whose field does not match the cookie. The throttle (``accounts.throttle``) is asked before the
password is checked."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yizhan.accounts.sessions import end_session
from yizhan.accounts.signin import WRONG, sign_in
from yizhan.accounts.throttle import SignInThrottled
from yizhan.console.auth import (
    SESSION_COOKIE,
    SIGNIN_PATH,
    ConsoleUnavailable,
    CsrfChecked,
    clear_session_cookie,
    console_engine,
    console_settings,
    current_user,
    local_path,
    request_now,
    set_session_cookie,
)
from yizhan.console.layout import render
from yizhan.errors import DATABASE_DOWN_ERRORS, as_unavailable

SIGNIN_CSRF_COOKIE = "yizhan_signin_csrf"
"""The cookie that the sign-in form's hidden token must match."""
NAME_MAX_CHARS = 100
PASSWORD_MAX_CHARS = 200

router = APIRouter(tags=["console"], include_in_schema=False)


def _form(request: Request, *, next_path: str, message: str | None = None, name: str = "",
          status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    page = render(request, "signin.html", status_code=status_code, headers=headers, next_path=next_path,
                  signin_token=token, message=message, name=name, name_max=NAME_MAX_CHARS,
                  password_max=PASSWORD_MAX_CHARS)
    page.set_cookie(SIGNIN_CSRF_COOKIE, token, path=SIGNIN_PATH, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https")
    return page


@router.get(SIGNIN_PATH, response_class=HTMLResponse)
def signin_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """The sign-in form; a browser already signed in goes straight on to ``next`` (a local path)."""
    next_path = local_path(next)
    if current_user(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _form(request, next_path=next_path)


@router.post(SIGNIN_PATH, response_class=HTMLResponse)
def signin_post(request: Request, name: Annotated[str, Form(max_length=NAME_MAX_CHARS)] = "",
                password: Annotated[str, Form(max_length=PASSWORD_MAX_CHARS)] = "",
                csrf_token: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Sign in: 303 to ``next`` with the session cookie; the form again with what went wrong otherwise (403 for a
    form not from this site, 401 for a wrong name or password, 429 while throttled)."""
    next_path = local_path(next)
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _form(request, next_path=next_path, name=name, status_code=403,
                     message="表单已过期或不是来自本站，请重新登录 / the form has expired or did not come from this "
                             "site; please sign in again")
    if not name.strip() or not password:
        return _form(request, next_path=next_path, name=name, status_code=400,
                     message="请填写用户名和密码 / enter your user name and password")
    settings = console_settings(request)
    address = request.client.host if request.client else "unknown"
    try:
        with console_engine(request).begin() as conn:  # a failure is committed: it is counted
            done = sign_in(conn, name, password, address, settings, now=request_now(request))
    except DATABASE_DOWN_ERRORS as exc:
        raise ConsoleUnavailable(str(as_unavailable(exc))) from exc
    except SignInThrottled as exc:
        return _form(request, next_path=next_path, name=name, status_code=429, message=str(exc),
                     headers={"Retry-After": str(exc.retry_after)})
    if done is None:
        return _form(request, next_path=next_path, name=name, status_code=401, message=WRONG)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, done.token, settings)
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path=SIGNIN_PATH)
    return response


@router.post("/console/signout")
def signout(request: Request, _: CsrfChecked) -> Response:
    """End this browser's session and go to the sign-in page."""
    with console_engine(request).begin() as conn:
        end_session(conn, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(SIGNIN_PATH, status_code=303)
    clear_session_cookie(response, request)
    return response
