"""The interactive API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) and the OpenAPI document are for console users
and staff keys: without either a browser is sent to sign in and back, a script gets 401 (real HTTP, real PostGIS
for the sessions and keys). Signed in, they work offline: their pages load only files the app serves itself
(``yizhan.api.DOCS_ASSET_PREFIX``, public), and render fully in a headless Chromium that signs in through the
console's form and cannot reach any host but the test server. FastAPI's own pages, which load from a CDN, stay
blank there (the control that shows the browser check can fail).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from api_data import KEY, STAFF
from browser import OFFLINE_FLAGS, chromium, needs_chromium
from console_session import HTML, PASSWORD, make_user, signed_in
from fastapi import FastAPI
from live_server import live_server
from sqlalchemy import Engine

from yizhan.api import DOCS_ASSET_DIR, DOCS_ASSET_PREFIX, DOCS_PAGE_POLICY, OPENAPI_PATH, create_app
from yizhan.settings import Settings

ASSETS = {  # file: the content type it must be served with
    "swagger-ui-bundle.js": "javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "javascript",
    "favicon.png": "image/png",
}
TITLE = "yizhan 驿站"
READER = "wangfang"
"""The console user who reads the docs (role staff: any role may)."""
DOCS_ROUTES = ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs/oauth2-redirect?state=s1&code=c1", OPENAPI_PATH)


@pytest.fixture
def base(db_url: str, tmp_path: Path) -> Iterator[str]:
    """The app served over HTTP against the test's fresh database (sessions and keys live there)."""
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key=KEY))
    try:
        with live_server(app) as url:
            yield url
    finally:
        app.state.db.dispose()


@pytest.fixture
def reader(engine: Engine) -> str:
    """A console user's name (password ``PASSWORD``)."""
    make_user(engine, READER, "staff")
    return READER


@pytest.fixture
def client(base: str, reader: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in through the console's form."""
    with httpx.Client(base_url=base, timeout=30) as signed:
        assert signed_in(signed, reader).status_code == 303
        yield signed


def loaded_urls(html: str) -> list[str]:
    """Every URL a docs page loads: ``src``/``href`` attributes and the string URLs of its inline script."""
    in_script = r"""(?:url|oauth2RedirectUrl)['"]?\s*:\s*['"]([^'"]+)['"]"""
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(in_script, html)


# --- who may open them ------------------------------------------------------------------------------------------
def test_without_a_session_or_key_a_browser_is_sent_to_sign_in_and_a_script_gets_401(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as anyone:
        for path in DOCS_ROUTES:
            r = anyone.get(path, headers=HTML)
            assert r.status_code == 303, (path, r.status_code, r.text)
            assert r.headers["location"] == "/console/signin?next=" + quote(path, safe="/"), r.headers["location"]
            for headers in ({}, {"Accept": "application/json"}, {"X-API-Key": "not a key"}):
                r = anyone.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.status_code, r.text)
                detail = r.json()["detail"]
                assert detail.startswith("请先登录控制台") and "X-API-Key" in detail, detail
                assert TITLE not in r.text and "swagger" not in r.text.lower() and "paths" not in r.json()
        # what the pages load from the app is no secret: the packaged Swagger UI and ReDoc stay public
        assert anyone.get(f"{DOCS_ASSET_PREFIX}/swagger-ui-bundle.js").status_code == 200
        assert anyone.get("/healthz").status_code == 200


def test_signing_in_from_the_docs_goes_back_to_them(base: str, reader: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as browser:
        for path in ("/docs", "/redoc"):
            asked = browser.get(path, headers=HTML)
            next_path = parse_qs(urlsplit(asked.headers["location"]).query)["next"][0]
            assert next_path == path
            r = signed_in(browser, reader, next_path=next_path)
            assert r.status_code == 303 and r.headers["location"] == path, r.headers
            page = browser.get(path, headers=HTML)
            assert page.status_code == 200 and f"<title>{TITLE}" in page.text, page.text[:500]
            browser.cookies.clear()  # signed out again for the next page


def test_a_staff_key_opens_the_openapi_document_and_the_pages(base: str, client: httpx.Client) -> None:
    with httpx.Client(base_url=base, timeout=30) as script:
        by_key = script.get(OPENAPI_PATH, headers=STAFF)
        assert by_key.status_code == 200 and by_key.headers["content-type"] == "application/json", by_key.text
        for page in ("/docs", "/redoc"):
            assert script.get(page, headers=STAFF).status_code == 200, page
    by_session = client.get(OPENAPI_PATH)
    assert by_session.status_code == 200
    assert by_key.json() == by_session.json()
    assert by_key.json()["info"]["title"] == TITLE


# --- what they load ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_only_the_apps_own_files(client: httpx.Client, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == DOCS_PAGE_POLICY
    urls = loaded_urls(r.text)
    assert urls, r.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from another host"
        assert url in (OPENAPI_PATH, "/docs/oauth2-redirect") or url.startswith(DOCS_ASSET_PREFIX + "/"), url
        if url != "/docs/oauth2-redirect":  # that one is opened by an OAuth2 provider, checked below
            assert client.get(url).status_code == 200, url
    assert "fonts.googleapis" not in r.text and "cdn." not in r.text


def test_docs_assets_are_served_whole_with_their_types(client: httpx.Client) -> None:
    for name, kind in ASSETS.items():
        r = client.get(f"{DOCS_ASSET_PREFIX}/{name}")
        assert r.status_code == 200, name
        assert kind in r.headers["content-type"], (name, r.headers["content-type"])
        assert r.content == (DOCS_ASSET_DIR / name).read_bytes(), name
    assert client.get(f"{DOCS_ASSET_PREFIX}/nothing.js").status_code == 404
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


def test_openapi_document_leaves_the_docs_pages_out(client: httpx.Client) -> None:
    doc = client.get(OPENAPI_PATH).json()
    assert doc["info"]["title"] == TITLE
    assert "/stations/nearest" in doc["paths"]
    assert not [p for p in doc["paths"] if p.startswith(("/docs", "/redoc", "/openapi", DOCS_ASSET_PREFIX))]
    assert "servers" not in doc  # served at the root: no prefix to name


def test_docs_pages_served_behind_a_path_prefix_carry_it(db_url: str, tmp_path: Path, reader: str) -> None:
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key=KEY))
    app.root_path = "/yizhan"
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/docs", headers=HTML).status_code == 303
            assert signed_in(client, reader).status_code == 303
            for page in ("/docs", "/redoc"):
                urls = loaded_urls(client.get(page).text)
                assert urls and all(u.startswith("/yizhan/") for u in urls), (page, urls)
            doc = client.get(OPENAPI_PATH).json()
            assert doc["servers"][0] == {"url": "/yizhan"}, doc.get("servers")
    finally:
        app.state.db.dispose()


# --- in a browser that cannot reach the internet --------------------------------------------------------------
class Offline:
    """A headless Chromium (Playwright driving the system's binary) where every host but localhost is unresolvable
    and any request to another host is aborted and recorded (``outside``). Requests the page's own
    Content-Security-Policy stops before they are made are recorded apart (``blocked``), as are other failed
    requests (``failed``) and script errors (``errors``). Its pages share one cookie jar (a console session)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        flags = [f for f in OFFLINE_FLAGS if f != "--headless"]
        self._browser = self._playwright.chromium.launch(executable_path=chromium(), args=flags)
        self._context = self._browser.new_context(viewport={"width": 1366, "height": 768})
        self.outside: list[str] = []
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.visited: list[str] = []
        """The path of every page the browser showed, in order (sign-in included)."""

    def open(self, url: str, *ready: str, sign_in_as: str | None = None, timeout_ms: float = 30_000) -> list[str]:
        """Open ``url`` and wait until an element matching each selector of ``ready`` (Playwright's syntax) is
        visible; their texts. With ``sign_in_as``, the page is expected to send the browser to the console's
        sign-in form first: the user signs in there (password ``PASSWORD``) and is sent back."""
        from playwright.sync_api import Frame, Request, Route

        def guard(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        page = self._context.new_page()
        page.route("**/*", guard)

        def shown(frame: Frame) -> None:
            if frame == page.main_frame:
                self.visited.append(urlsplit(frame.url).path)

        def failed(request: Request) -> None:
            if request.url in self.outside:
                return  # aborted by guard
            stopped = request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP")  # Chromium says either
            (self.blocked if stopped else self.failed).append(request.url)

        page.on("requestfailed", failed)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("framenavigated", shown)
        page.goto(url.replace("//127.0.0.1:", "//localhost:"))  # the resolver rules map every other name away
        if sign_in_as is not None:
            assert urlsplit(page.url).path == "/console/signin", page.url
            page.fill("#name", sign_in_as)
            page.fill("#password", PASSWORD)
            with page.expect_navigation(url=url.replace("//127.0.0.1:", "//localhost:"), timeout=timeout_ms):
                page.click("button.primary")
        texts = []
        for selector in ready:
            element = page.wait_for_selector(selector, state="visible", timeout=timeout_ms)
            assert element is not None
            texts.append(element.inner_text())
        return texts

    def close(self) -> None:
        self._context.close()
        self._browser.close()
        self._playwright.stop()


@pytest.fixture
def offline() -> Iterator[Offline]:
    browser = Offline()
    try:
        yield browser
    finally:
        browser.close()


@needs_chromium
def test_swagger_ui_lists_the_operations_offline(base: str, reader: str, offline: Offline) -> None:
    (path,) = offline.open(f"{base}/docs", ".opblock-summary-path[data-path='/stations/nearest']",
                           sign_in_as=reader)
    assert path.replace("\u200b", "") == "/stations/nearest"  # Swagger UI breaks paths with zero-width spaces
    assert offline.visited[:2] == ["/console/signin", "/docs"], offline.visited  # sent to sign in, then back
    assert offline.outside == [] and offline.failed == [] and offline.errors == []


@needs_chromium
def test_redoc_shows_the_title_and_operations_offline(base: str, reader: str, offline: Offline) -> None:
    title, path = offline.open(f"{base}/redoc", "h1", 'text="/stations/nearest"', sign_in_as=reader)
    assert title.startswith(TITLE)
    assert path == "/stations/nearest"
    assert offline.visited[:2] == ["/console/signin", "/redoc"], offline.visited
    assert offline.outside == [] and offline.failed == [] and offline.errors == []
    # ReDoc's footer asks for its maker's logo on a CDN; the page's policy stops it in the browser
    assert all(urlsplit(url).hostname not in ("127.0.0.1", "localhost") for url in offline.blocked)


@needs_chromium
def test_fastapis_own_docs_stay_blank_offline(offline: Offline) -> None:
    """The control: FastAPI's default /docs asks a CDN for Swagger UI; offline the request is made, blocked, and
    no operation appears."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    plain = FastAPI(title="plain")

    @plain.get("/stations/nearest")
    def nearest() -> dict[str, str]:
        return {}

    with live_server(plain) as url, pytest.raises(PlaywrightTimeout):
        offline.open(f"{url}/docs", ".opblock-summary-path", timeout_ms=3_000)
    assert offline.outside and all(urlsplit(u).hostname not in ("127.0.0.1", "localhost") for u in offline.outside)


def test_ci_runs_the_readmes_test_command_word_for_word(tmp_path: Path) -> None:
    """``.ci/run`` runs the command of the README's opening block that runs the tests, word for word, with nothing
    added to the environment: its one command is that line without its comment, and in a copy of the repository
    whose ``run`` only reports how it was called, it is called as the README says."""
    import os
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    opening = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    readme_command = next(x.split("#", 1)[0].strip() for x in opening if x.startswith("./run test"))
    ci = (root / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [x for x in ci if x.strip() and not x.startswith("#") and not x.startswith(("set ", "cd "))]
    assert commands == [readme_command] == ["./run test"]
    (tmp_path / ".ci").mkdir()
    shutil.copy(root / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "run").write_text('#!/usr/bin/env bash\necho "args=$*"\necho "CI=${CI-unset}"\n'
                                  'echo "strict=${YIZHAN_STRICT_SKIPS-unset}"\n')
    (tmp_path / "run").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "YIZHAN_STRICT_SKIPS")}
    done = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env,
                          check=True)
    assert done.stdout.splitlines() == ["args=test", "CI=unset", "strict=unset"]


def test_a_skip_fails_under_run_test_unless_it_cannot_be_provided(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``YIZHAN_STRICT_SKIPS`` (set by ``./run test``) a skip is refused, but not one of
    ``skip_not_provided``, nor an expected failure; without it every skip stands."""
    from types import SimpleNamespace

    from skips import NOT_PROVIDED, refused

    plain = SimpleNamespace(skipped=True, longrepr=("t.py", 3, "Skipped: chromium is not installed"))
    unprovided = SimpleNamespace(skipped=True, longrepr=("t.py", 3, f"Skipped: {NOT_PROVIDED}no shared extract"))
    xfail = SimpleNamespace(skipped=True, longrepr="", wasxfail="known")
    passed = SimpleNamespace(skipped=False, longrepr=None)
    monkeypatch.delenv("YIZHAN_STRICT_SKIPS", raising=False)
    assert not any(refused(r) for r in (plain, unprovided, xfail, passed))
    monkeypatch.setenv("YIZHAN_STRICT_SKIPS", "1")
    assert [refused(r) for r in (plain, unprovided, xfail, passed)] == [True, False, False, False]
