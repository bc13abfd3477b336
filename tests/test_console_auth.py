"""The console's sign-in over real HTTP (uvicorn, real PostGIS) and in Chromium: pages and /map send a browser
without a session to sign in, forms without the session's CSRF token are refused, the tenth wrong password is
throttled (per account, and per address across accounts), roles are enforced, sessions expire (the app's clock
moved, not slept on) and end when their user is disabled; screenshots of the sign-in page and the home page."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from api_data import KEY
from browser import needs_chromium, page_width
from console_session import HTML, PASSWORD, Clock, form_token, make_user, served, signed_in
from playwright.sync_api import Route
from sqlalchemy import Engine, text

from yizhan.console.layout import CSP


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[httpx.Client]:
    """The app over HTTP with a movable console clock; a client (a cookie jar: one browser)."""
    yield from served(db_url, tmp_path, clock)


def another(client: httpx.Client) -> httpx.Client:
    """A second browser on the same server (its own cookies)."""
    return httpx.Client(base_url=client.base_url, timeout=30)


def test_console_pages_and_the_map_send_a_browser_to_sign_in(site: httpx.Client, engine: Engine) -> None:
    for path in ("/console", "/console/users", "/console/users?done=created&name=x", "/map", "/map?run=3", "/docs"):
        r = site.get(path, headers=HTML)
        assert r.status_code == 303, (path, r.status_code, r.text)
        assert r.headers["location"] == "/console/signin?next=" + quote(path, safe="/"), r.headers["location"]
    for path in ("/console/users", "/console/signout"):
        r = site.post(path, headers=HTML, data={"action": "create", "name": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/signin?next="), path
    # a script without a session is told 401, in Chinese and English; with a staff key it gets the map
    r = site.get("/map")
    assert r.status_code == 401 and r.json()["detail"].startswith("请先登录控制台"), r.text
    assert "X-API-Key" in r.json()["detail"]
    r = site.get("/map", headers={"X-API-Key": KEY})
    assert r.status_code == 404 and "no coverage run" in r.json()["detail"]  # past the sign-in: no run yet
    assert site.get("/map", headers={**HTML, "X-API-Key": "not a key"}).status_code == 303
    # the rider's pages and the API's public routes stay open
    for path in ("/", "/stations", "/healthz", "/console/signin", "/console-assets/console.css"):
        assert site.get(path, headers=HTML).status_code == 200, path
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0


def test_signing_in_sets_a_safe_cookie_and_goes_back_where_asked(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "王芳", "admin")
    r = signed_in(site, "王芳", next_path="/console/users")
    assert r.status_code == 303 and r.headers["location"] == "/console/users", r.text
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("yizhan_session="))
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes, cookie
    assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
    home = site.get("/console", headers=HTML)
    assert home.status_code == 200
    assert home.headers["content-security-policy"] == CSP and home.headers["cache-control"] == "no-store"
    for text_ in ("王芳", "管理员 administrator", "站点登记", "Registry", "需求", "Demand", "分析", "Runs", "对比",
                  "Compare", "选址建议", "Recommendations", "地图", "Map", "用户", "Users", 'href="/map"'):
        assert text_ in home.text, text_
    assert "https://" not in home.text and "http://" not in home.text  # nothing from another host
    assert site.get("/console/signin", headers=HTML).status_code == 303  # signed in: on to the console
    assert site.get("/map", headers=HTML).status_code == 404  # past the sign-in: no run yet


def test_the_session_cookie_is_secure_behind_an_https_proxy(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "wangfang", "staff")
    # the test server believes its loopback peer as a proxy (as `yizhan serve` does with --trusted-proxy)
    r = signed_in(site, "wangfang", headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("yizhan_session="))
    assert "secure" in cookie.lower() and "httponly" in cookie.lower(), cookie


@pytest.mark.parametrize("bad", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x",
                                 "console", "/\x00x"])
def test_next_is_only_ever_a_local_path(site: httpx.Client, engine: Engine, bad: str) -> None:
    make_user(engine, "wangfang", "staff")
    page = site.get("/console/signin", headers=HTML, params={"next": bad})
    assert 'name="next" value="/console"' in page.text
    r = signed_in(site, "wangfang", next_path=bad)
    assert r.status_code == 303 and r.headers["location"] == "/console", r.headers["location"]


def test_forms_without_the_sessions_csrf_token_are_refused(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "root1", "admin")
    assert signed_in(site, "root1").status_code == 303
    users = site.get("/console/users", headers=HTML)
    token = form_token(users)
    new = {"action": "create", "name": "zhaolei", "role": "staff", "password": PASSWORD}
    for sent in ({}, {"csrf_token": ""}, {"csrf_token": token + "x"}, {"csrf_token": token.upper()}):
        r = site.post("/console/users", headers=HTML, data={**new, **sent})
        assert r.status_code == 403, (sent, r.status_code)
        assert "表单缺少安全令牌" in r.text and "security token is missing or wrong" in r.text
    r = site.post("/console/signout", headers=HTML, data={})
    assert r.status_code == 403
    assert site.get("/console", headers=HTML).status_code == 200  # still signed in
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE name = 'zhaolei'")).scalar() == 0
    r = site.post("/console/users", headers=HTML, data={**new, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/users?done=created&name=zhaolei"
    assert "已创建用户 zhaolei / user created: zhaolei" in site.get(r.headers["location"], headers=HTML).text
    # the sign-in form: its token must match its cookie
    with another(site) as other:
        page = other.get("/console/signin", headers=HTML)
        other.cookies.clear()
        r = other.post("/console/signin", headers=HTML,
                       data={"name": "root1", "password": PASSWORD, "csrf_token": form_token(page)})
        assert r.status_code == 403 and "表单已过期或不是来自本站" in r.text
    # signing out with the token ends the session
    r = site.post("/console/signout", headers=HTML, data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/signin"
    assert site.get("/console", headers=HTML).status_code == 303


def test_a_planner_cannot_reach_the_admins_users_page(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "planner1", "planner")
    assert signed_in(site, "planner1").status_code == 303
    home = site.get("/console", headers=HTML)
    assert "规划人员 planner" in home.text and 'href="/console/users"' not in home.text
    for r in (site.get("/console/users", headers=HTML),
              site.post("/console/users", headers=HTML, data={"action": "create", "name": "mine", "role": "admin",
                                                              "password": PASSWORD,
                                                              "csrf_token": form_token(home)})):
        assert r.status_code == 403, r.text
        assert "此页面需要管理员角色；您的角色是规划人员。" in r.text
        assert "This page needs the administrator role; you are signed in as planner." in r.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
    assert site.get("/map", headers=HTML).status_code == 404  # the map is for every role (no run yet)


def test_a_session_expires_when_idle_and_at_its_absolute_end(db_url: str, tmp_path: Path, engine: Engine,
                                                            clock: Clock) -> None:
    make_user(engine, "wangfang", "staff")
    for client in served(db_url, tmp_path, clock, session_idle_minutes=120, session_max_hours=12):
        assert signed_in(client, "wangfang").status_code == 303
        clock.advance(minutes=119)
        assert client.get("/console", headers=HTML).status_code == 200
        clock.advance(minutes=121)  # 121 minutes unused
        r = client.get("/console", headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == "/console/signin?next=/console"
        assert client.get("/map", headers=HTML).status_code == 303
        # used every 100 minutes, it still ends 12 hours after signing in
        assert signed_in(client, "wangfang").status_code == 303
        for _ in range(7):
            clock.advance(minutes=100)
            assert client.get("/console", headers=HTML).status_code == 200
        clock.advance(minutes=21)  # 12 h 1 min after signing in
        assert client.get("/console", headers=HTML).status_code == 303


def test_a_disabled_users_session_stops_working(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "root1", "admin")
    make_user(engine, "wangfang", "staff")
    assert signed_in(site, "root1").status_code == 303
    with another(site) as staff:
        assert signed_in(staff, "wangfang").status_code == 303
        assert staff.get("/console", headers=HTML).status_code == 200
        token = form_token(site.get("/console/users", headers=HTML))
        r = site.post("/console/users", headers=HTML, data={"action": "disable", "name": "wangfang",
                                                              "csrf_token": token})
        assert r.status_code == 303
        assert staff.get("/console", headers=HTML).status_code == 303
        assert "已停用" in site.get("/console/users", headers=HTML).text
        r = signed_in(staff, "wangfang")
        assert r.status_code == 401 and "用户名或密码不正确 / wrong user name or password" in r.text
        # enabled again, signed in again; a new password set by the admin ends that session too
        site.post("/console/users", headers=HTML, data={"action": "enable", "name": "wangfang", "csrf_token": token})
        assert signed_in(staff, "wangfang").status_code == 303
        r = site.post("/console/users", headers=HTML, data={"action": "password", "name": "wangfang",
                                                              "password": "a new password here", "csrf_token": token})
        assert r.status_code == 303
        assert staff.get("/console", headers=HTML).status_code == 303
        assert signed_in(staff, "wangfang", "a new password here").status_code == 303


def test_the_tenth_wrong_password_is_throttled(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "wangfang", "staff")
    for i in range(9):
        r = signed_in(site, "wangfang", f"wrong password {i}", headers={"X-Forwarded-For": f"10.1.0.{i}"})
        assert r.status_code == 401 and "用户名或密码不正确 / wrong user name or password" in r.text, r.text
    r = signed_in(site, "wangfang", PASSWORD, headers={"X-Forwarded-For": "10.1.0.99"})  # the right one, too late
    assert r.status_code == 429, r.text
    assert "登录失败次数过多，请于" in r.text and "too many failed sign-ins: try again at" in r.text
    assert 14 * 60 < int(r.headers["retry-after"]) <= 15 * 60
    assert "yizhan_session" not in site.cookies


def test_an_address_is_throttled_across_accounts(db_url: str, tmp_path: Path, engine: Engine, clock: Clock) -> None:
    make_user(engine, "wangfang", "staff")
    for client in served(db_url, tmp_path, clock, signin_failures_per_address=9):
        for i in range(9):
            r = signed_in(client, f"guess{i}", "some password", headers={"X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 401, r.text
        r = signed_in(client, "wangfang", PASSWORD, headers={"X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 429 and "try again at" in r.text
        assert signed_in(client, "wangfang", PASSWORD, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 303
        clock.advance(minutes=15, seconds=1)  # the window has passed: the address may try again
        client.cookies.clear()
        assert signed_in(client, "wangfang", PASSWORD, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 303


def test_text_from_data_and_requests_is_escaped(site: httpx.Client, engine: Engine) -> None:
    make_user(engine, "root1", "admin")
    page = site.get("/console/signin", headers=HTML, params={"next": '/console?"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.text and "&#34;&gt;&lt;script&gt;" in page.text
    assert signed_in(site, "root1").status_code == 303
    token = form_token(site.get("/console/users", headers=HTML))
    r = site.post("/console/users", headers=HTML, data={"action": "create", "name": "<b>x</b>", "role": "staff",
                                                         "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 422 and "<b>x</b>" not in r.text and "&lt;b&gt;x&lt;/b&gt;" in r.text
    assert "user name &#39;&lt;b&gt;x&lt;/b&gt;&#39;: expected 1 to 50 letters" in r.text
    r = site.get("/console/users", headers=HTML, params={"done": "created", "name": "<i>y</i>"})
    assert "<i>y</i>" not in r.text and "&lt;i&gt;y&lt;/i&gt;" in r.text
    r = site.post("/console/users", headers=HTML, data={"action": "disable", "name": "nobody", "csrf_token": token})
    assert r.status_code == 404 and "没有用户 &#39;nobody&#39;" in r.text


# --- in Chromium -------------------------------------------------------------------------------------------------
PHONE = {"width": 390, "height": 844}


def only_this_host(asked: list[str]) -> Callable[[Route], None]:
    """A route handler that records every URL asked for and lets only the test server's through."""

    def route(r: Route) -> None:
        asked.append(r.request.url)
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    return route
DESKTOP = {"width": 1366, "height": 768}


@needs_chromium
def test_signing_in_in_a_browser_at_phone_and_desktop_sizes(site: httpx.Client, engine: Engine,
                                                            tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    make_user(engine, "王芳", "admin")
    base = str(site.base_url).rstrip("/")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            for label, viewport in (("390x844", PHONE), ("1366x768", DESKTOP)):
                context = browser.new_context(viewport=viewport, locale="zh-CN")
                asked: list[str] = []
                problems: list[str] = []

                context.route("**/*", only_this_host(asked))
                page = context.new_page()
                page.on("pageerror", lambda exc, problems=problems: problems.append(str(exc)))
                page.on("console", lambda m, problems=problems: problems.append(m.text) if m.type == "error" else None)
                page.goto(f"{base}/map")  # the map sends the browser to sign in, then back
                assert urlsplit(page.url).path == "/console/signin", page.url
                page.screenshot(path=str(shots / f"signin-{label}.png"), full_page=True)
                width = page_width(page)
                assert width <= viewport["width"], (label, width)  # no sideways scrolling
                for selector in ("#name", "#password", "button.primary"):
                    box = page.locator(selector).bounding_box()
                    assert box is not None and box["height"] >= 44, (label, selector, box)  # thumb-sized
                page.fill("#name", "王芳")
                page.fill("#password", "wrong password!")
                page.click("button.primary")
                assert "用户名或密码不正确" in page.inner_text(".error")
                page.fill("#password", PASSWORD)
                page.click("button.primary")
                page.wait_for_load_state()
                assert urlsplit(page.url).path == "/map", page.url  # back where it was going (no run yet: 404)
                page.goto(f"{base}/console")
                assert "王芳" in page.inner_text("header") and "管理员 administrator" in page.inner_text("header")
                tiles = page.locator(".tile")
                assert tiles.count() == 7
                assert page_width(page) <= viewport["width"]
                page.screenshot(path=str(shots / f"home-{label}.png"), full_page=True)
                page.click("a.tile[href='/console/users']")
                assert page.locator("table.users td").first.inner_text() == "王芳"
                assert page_width(page) <= viewport["width"]
                page.screenshot(path=str(shots / f"users-{label}.png"), full_page=True)
                cookies = {c["name"]: c for c in context.cookies()}
                assert cookies["yizhan_session"]["httpOnly"] and cookies["yizhan_session"]["sameSite"] == "Lax"
                assert page.evaluate("document.cookie") == ""  # the session is out of scripts' reach
                page.click("header button.link")  # sign out
                assert urlsplit(page.url).path == "/console/signin"
                page.goto(f"{base}/console")
                assert urlsplit(page.url).path == "/console/signin"
                outside = [u for u in asked if urlsplit(u).hostname != "127.0.0.1"]
                # the wrong password's 401 and the map's 404 (no run yet) are the only failed loads; no CSP report
                expected = ("status of 401", "status of 404")
                assert outside == [] and [p for p in problems if not any(e in p for e in expected)] == [], \
                    (outside, problems)
                context.close()
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == ["home-1366x768.png", "home-390x844.png",
                                                       "signin-1366x768.png", "signin-390x844.png",
                                                       "users-1366x768.png", "users-390x844.png"]


def test_while_the_database_is_down_the_console_says_so(tmp_path: Path, clock: Clock) -> None:
    """No database behind the app (nothing listens on the port): the sign-in form still loads; a browser with a
    session cookie, or posting the form, gets a 503 page in Chinese and English; a script gets the API's JSON."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed again: nothing answers there
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"
    for client in served(url, tmp_path, clock):
        page = client.get("/console/signin", headers=HTML)
        assert page.status_code == 200
        client.cookies.set("yizhan_session", "some token")
        for r in (client.get("/console", headers=HTML), client.get("/map", headers=HTML),
                  client.post("/console/signin", headers=HTML,
                              data={"name": "wangfang", "password": PASSWORD, "csrf_token": form_token(page)})):
            assert r.status_code == 503, (r.status_code, r.text)
            assert "数据库暂时无法连接" in r.text and "The database cannot be reached" in r.text
            assert r.headers["content-security-policy"] == CSP
        r = client.get("/map")
        assert r.status_code == 503 and "database" in r.json()["detail"]
