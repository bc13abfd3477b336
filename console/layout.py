"""The console's pages rendered: the Jinja2 templates of ``console/templates`` (every page extends ``base.html``),
the style sheet served at ``STATIC_PREFIX``, and the headers every page carries (a Content-Security-Policy under
which the browser loads nothing from another host and runs no script at all; no caching of signed-in pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from yizhan.accounts.sessions import SignedIn
from yizhan.accounts.users import ROLES
from yizhan.console.auth import CSRF_FIELD, current_user

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
"""The console's own style sheet (no third-party file)."""
STATIC_PREFIX = "/console-assets"

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
"""The console pages' Content-Security-Policy (the rider's pages' policy, stricter: the console runs no script and
has no inline style)."""

TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True)

EVERYONE = ("admin", "staff", "planner")
SECTIONS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("/console/registry", "站点登记", "Registry", "上传登记表，查看、下载驿站 / upload, see and download the registry",
     EVERYONE),
    ("/console/demand", "需求", "Demand", "上传订单点 / upload order points", EVERYONE),
    ("/console/runs", "分析", "Runs", "覆盖分析及报告 / coverage runs and their reports", EVERYONE),
    ("/console/compare", "对比", "Compare", "两次分析对比 / two runs side by side", EVERYONE),
    ("/console/recommendations", "选址建议", "Recommendations", "新站点选址 / where to open next", EVERYONE),
    ("/map", "地图", "Map", "覆盖地图 / the coverage map", EVERYONE),
    ("/console/users", "用户", "Users", "账户管理 / accounts", ("admin",)),
)
"""The console's sections: path, Chinese and English name, what it is for, the roles that see it."""


def role_label(role: str) -> str:
    """A role in Chinese and English: ``管理员 administrator``."""
    zh, en = ROLES.get(role, (role, role))
    return f"{zh} {en}"


def csrf_field(user: SignedIn | None) -> Markup:
    """The hidden field carrying the session's CSRF token, for every form of a signed-in page."""
    if user is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(user.csrf_token))


def render(request: Request, template: str, *, status_code: int = 200, user: SignedIn | None = None,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` and what the layout needs (``root``, ``assets``, ``user``,
    ``role_label``, ``csrf_field``, ``sections``), with the console's headers. ``user`` defaults to the request's
    signed-in user, if any."""
    if user is None:
        user = current_user(request)
    root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy with a path prefix
    sections = [s for s in SECTIONS if user is not None and user.role in s[4]]
    page = TEMPLATES.get_template(template).render(
        root=root, assets=root + STATIC_PREFIX, user=user, role_label=role_label, csrf_field=csrf_field(user),
        sections=sections, **context)
    return HTMLResponse(page, status_code=status_code, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": CSP, "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff", **(headers or {})})
