"""The console put together: its routers, its style sheet and the answers of its dependencies' refusals (a 303 to
the sign-in page, the 403 pages of a missing role or CSRF token). ``api.create_app`` calls :func:`install`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from yizhan.console import compare, demand, home, progress, recommendations, registry, runs, signin, users
from yizhan.console.auth import ConsoleUnavailable, CsrfRefused, RoleRequired, SignInRequired, signin_url, wants_html
from yizhan.console.layout import STATIC_DIR, STATIC_PREFIX, render, role_label
from yizhan.errors import domain_response


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(root + signin_url(exc.next_path), status_code=303, headers={"Cache-Control": "no-store"})


async def _role_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RoleRequired)
    needed = "、".join(role_label(r).split(" ")[0] for r in exc.roles)
    needed_en = " or ".join(role_label(r).split(" ", 1)[1] for r in exc.roles)
    return render(request, "refused.html", status_code=403, user=exc.user, title_zh="无权访问", title_en="Not allowed",
                  zh=f"此页面需要{needed}角色；您的角色是{role_label(exc.user.role).split(' ')[0]}。",
                  en=f"This page needs the {needed_en} role; you are signed in as "
                     f"{role_label(exc.user.role).split(' ', 1)[1]}.")


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return render(request, "refused.html", status_code=403, title_zh="表单无效", title_en="Form refused",
                  zh="表单缺少安全令牌或令牌不正确：请返回，刷新页面后重新提交。",
                  en="The form's security token is missing or wrong: go back, reload the page and send it again.")


async def _unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleUnavailable)
    if not wants_html(request):
        return domain_response(exc)
    request.state.console_user = None  # the page itself must not ask the database again
    return render(request, "refused.html", status_code=503, headers={"Retry-After": "30"},
                  title_zh="暂时无法使用", title_en="Unavailable for now",
                  zh="数据库暂时无法连接，请稍后刷新页面。",
                  en="The database cannot be reached right now: reload the page in a moment.")


def install(app: FastAPI) -> None:
    """Add the console to ``app``: its pages, ``STATIC_PREFIX`` and its refusal answers."""
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(RoleRequired, _role_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(ConsoleUnavailable, _unavailable)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="console-assets")
    app.include_router(signin.router)
    app.include_router(home.router)
    app.include_router(users.router)
    app.include_router(registry.router)
    app.include_router(demand.router)
    app.include_router(progress.router)
    app.include_router(runs.router)
    app.include_router(compare.router)
    app.include_router(recommendations.router)
