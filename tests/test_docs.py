"""The interactive API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) work offline: their pages load only files the
app serves itself (``yizhan.api.DOCS_ASSET_PREFIX``), over real HTTP, and render fully in a headless Chromium that
cannot reach any host but the test server. FastAPI's own pages, which load from a CDN, stay blank there (the
control that shows the browser check can fail).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from browser import OFFLINE_FLAGS, chromium, needs_chromium
from fastapi import FastAPI
from live_server import live_server

from yizhan.api import DOCS_ASSET_DIR, DOCS_ASSET_PREFIX, DOCS_PAGE_POLICY, create_app
from yizhan.settings import Settings

ASSETS = {  # file: the content type it must be served with
    "swagger-ui-bundle.js": "javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "javascript",
    "favicon.png": "image/png",
}
TITLE = "yizhan 驿站"


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    """The app served over HTTP; the docs need no database, so none is connected."""
    app = create_app(Settings(data_dir=tmp_path / "data", staff_key="k"))
    try:
        with live_server(app) as url:
            yield url
    finally:
        app.state.db.dispose()


def loaded_urls(html: str) -> list[str]:
    """Every URL a docs page loads: ``src``/``href`` attributes and the string URLs of its inline script."""
    in_script = r"""(?:url|oauth2RedirectUrl)['"]?\s*:\s*['"]([^'"]+)['"]"""
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(in_script, html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_only_the_apps_own_files(base: str, page: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == DOCS_PAGE_POLICY
        urls = loaded_urls(r.text)
        assert urls, r.text
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from another host"
            assert url in ("/openapi.json", "/docs/oauth2-redirect") or url.startswith(DOCS_ASSET_PREFIX + "/"), url
            if url != "/docs/oauth2-redirect":  # that one is opened by an OAuth2 provider, checked below
                assert client.get(url).status_code == 200, url
        assert "fonts.googleapis" not in r.text and "cdn." not in r.text


def test_docs_assets_are_served_whole_with_their_types(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, kind in ASSETS.items():
            r = client.get(f"{DOCS_ASSET_PREFIX}/{name}")
            assert r.status_code == 200, name
            assert kind in r.headers["content-type"], (name, r.headers["content-type"])
            assert r.content == (DOCS_ASSET_DIR / name).read_bytes(), name
        assert client.get(f"{DOCS_ASSET_PREFIX}/nothing.js").status_code == 404
        redirect = client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


def test_openapi_document_leaves_the_docs_pages_out(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == TITLE
    assert "/stations/nearest" in doc["paths"]
    assert not [p for p in doc["paths"] if p.startswith(("/docs", "/redoc", DOCS_ASSET_PREFIX))]


def test_docs_pages_served_behind_a_path_prefix_carry_it(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", staff_key="k"))
    app.root_path = "/yizhan"
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            for page in ("/docs", "/redoc"):
                urls = loaded_urls(client.get(page).text)
                assert urls and all(u.startswith("/yizhan/") for u in urls), (page, urls)
    finally:
        app.state.db.dispose()


# --- in a browser that cannot reach the internet --------------------------------------------------------------
class Offline:
    """A headless Chromium (Playwright driving the system's binary) where every host but localhost is unresolvable
    and any request to another host is aborted and recorded (``outside``). Requests the page's own
    Content-Security-Policy stops before they are made are recorded apart (``blocked``), as are other failed
    requests (``failed``) and script errors (``errors``)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        flags = [f for f in OFFLINE_FLAGS if f != "--headless"]
        self._browser = self._playwright.chromium.launch(executable_path=chromium(), args=flags)
        self.outside: list[str] = []
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []

    def open(self, url: str, *ready: str, timeout_ms: float = 30_000) -> list[str]:
        """Open ``url`` and wait until an element matching each selector of ``ready`` (Playwright's syntax) is
        visible; their texts."""
        from playwright.sync_api import Request, Route

        def guard(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        page = self._browser.new_page(viewport={"width": 1366, "height": 768})
        page.route("**/*", guard)
        def failed(request: Request) -> None:
            if request.url in self.outside:
                return  # aborted by guard
            stopped = request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP")  # Chromium says either
            (self.blocked if stopped else self.failed).append(request.url)

        page.on("requestfailed", failed)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(url.replace("//127.0.0.1:", "//localhost:"))  # the resolver rules map every other name away
        texts = []
        for selector in ready:
            element = page.wait_for_selector(selector, state="visible", timeout=timeout_ms)
            assert element is not None
            texts.append(element.inner_text())
        return texts

    def close(self) -> None:
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
def test_swagger_ui_lists_the_operations_offline(base: str, offline: Offline) -> None:
    (path,) = offline.open(f"{base}/docs", ".opblock-summary-path[data-path='/stations/nearest']")
    assert path.replace("\u200b", "") == "/stations/nearest"  # Swagger UI breaks paths with zero-width spaces
    assert offline.outside == [] and offline.failed == [] and offline.errors == []


@needs_chromium
def test_redoc_shows_the_title_and_operations_offline(base: str, offline: Offline) -> None:
    title, path = offline.open(f"{base}/redoc", "h1", 'text="/stations/nearest"')
    assert title.startswith(TITLE)
    assert path == "/stations/nearest"
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
