"""``GET/POST /console/users`` (admins only): the accounts listed; a form to create one, and per account buttons
to disable or enable it and a form to give it a new password. Every change ends in a 303 back to the list with
what was done (post, redirect, get: a reload does not repeat it); a refused change shows the list again with the
reason, in Chinese and English, with the error's status (422 for a value refused, 404 for a name that is no
user)."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yizhan.accounts.passwords import MIN_LENGTH
from yizhan.accounts.sessions import SignedIn
from yizhan.accounts.users import ROLES, create_user, list_users, set_disabled, set_password
from yizhan.console.auth import AdminUser, CsrfChecked, console_engine
from yizhan.console.layout import render
from yizhan.errors import YizhanError, http_status

USERS_PATH = "/console/users"
DONE: dict[str, tuple[str, str]] = {
    "created": ("已创建用户", "user created"),
    "disabled": ("已停用用户，其登录已全部结束", "user disabled; their sessions have ended"),
    "enabled": ("已启用用户", "user enabled"),
    "password": ("已为用户设置新密码，其登录已全部结束", "password set; their sessions have ended"),
}
"""What the list says after a change: the ``done`` code, Chinese and English."""
ACTIONS = ("create", "disable", "enable", "password")

router = APIRouter(tags=["console"], include_in_schema=False)


def _page(request: Request, user: SignedIn, *, status_code: int = 200, error: str | None = None,
          done: str | None = None, name: str | None = None) -> HTMLResponse:
    with console_engine(request).connect() as conn:
        users = list_users(conn)
    said = DONE.get(done or "")
    message = f"{said[0]} {name} / {said[1]}: {name}" if said and name else None
    return render(request, "users.html", status_code=status_code, user=user, users=users, roles=ROLES,
                  error=error, message=message, min_length=MIN_LENGTH)


@router.get(USERS_PATH, response_class=HTMLResponse)
def users_page(request: Request, user: AdminUser,
               done: Annotated[str | None, Query(max_length=20)] = None,
               name: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
    """The accounts and the forms that change them."""
    return _page(request, user, done=done, name=name)


@router.post(USERS_PATH, response_class=HTMLResponse)
def users_post(request: Request, user: AdminUser, _: CsrfChecked,
               action: Annotated[str, Form(max_length=20)] = "",
               name: Annotated[str, Form(max_length=100)] = "",
               role: Annotated[str, Form(max_length=20)] = "",
               password: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Create an account (``action=create``: name, role, password), disable or enable one (name), or give one a
    new password (``action=password``: name, password)."""
    if action not in ACTIONS:
        return _page(request, user, status_code=400,
                     error=f"未知操作 {action!r} / unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    try:
        with console_engine(request).begin() as conn:
            if action == "create":
                done = create_user(conn, name, role, password).name
            elif action == "password":
                done = set_password(conn, name, password).name
            else:
                done = set_disabled(conn, name, action == "disable").name
    except YizhanError as exc:
        return _page(request, user, status_code=http_status(exc), error=str(exc))
    code = {"create": "created", "disable": "disabled", "enable": "enabled", "password": "password"}[action]
    return RedirectResponse(f"{USERS_PATH}?{urlencode({'done': code, 'name': done})}", status_code=303)
