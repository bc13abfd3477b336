"""Headless Chromium helpers for tests: dump the rendered DOM of a page, take a screenshot, decode a PNG.

Chromium runs fully offline: every host name except localhost resolves to nothing, and background/update/sync
traffic is switched off, so a page can only use files it ships (tiles simply fail to load).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
)


def chromium() -> str | None:
    """Path of the Chromium binary (``$YIZHAN_CHROMIUM`` first, then PATH), or None when none is installed."""
    override = os.environ.get("YIZHAN_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


Test = TypeVar("Test", bound=Callable[..., object])


def needs_chromium(test: Test) -> Test:
    """Mark ``test`` as a ``browser`` test, skipped when no Chromium is installed (in CI a skip fails: conftest)."""
    return pytest.mark.browser(pytest.mark.skipif(chromium() is None, reason="chromium is not installed")(test))


def dump_dom(url_or_path: str | Path, *, budget_ms: int = 10_000, window_size: tuple[int, int] = (1280, 900)) -> str:
    """Serialised DOM of a page after ``budget_ms`` of virtual time (scripts run, layers drawn).

    Parameters
    ----------
    url_or_path : str or pathlib.Path
        A URL (``http://localhost…``, ``file://…``) or a local file path.
    budget_ms : int
        Virtual time budget in milliseconds.
    window_size : (int, int)
        Viewport width and height in CSS pixels.
    """
    done = _run(["--dump-dom", f"--virtual-time-budget={budget_ms}", _window(window_size)], url_or_path)
    return done.stdout


def screenshot(
    url_or_path: str | Path,
    png_path: str | Path,
    *,
    budget_ms: int = 10_000,
    window_size: tuple[int, int] = (1280, 900),
) -> Path:
    """Save a PNG screenshot of a page (viewport ``window_size`` in CSS pixels) and return its path."""
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _run([f"--screenshot={png}", f"--virtual-time-budget={budget_ms}", _window(window_size), "--hide-scrollbars"],
         url_or_path)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def read_png(path: str | Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) to a (height, width, channels) array."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat = 8, []
    width = height = bit_depth = colour_type = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    channels = {2: 3, 6: 4}.get(colour_type)
    if bit_depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (bit depth {bit_depth}, colour type {colour_type})")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.uint8)
    prev = np.zeros(width * channels, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:
            row = line.reshape(width, channels).cumsum(axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            row = line + prev
        else:
            row = _unfilter_slow(int(kind), line.tolist(), prev.tolist(), channels)
        out[y] = row
        prev = row
    return out.reshape(height, width, channels)


def _unfilter_slow(kind: int, line: list[int], prev: list[int], bpp: int) -> np.ndarray:
    row = [0] * len(line)
    for i, v in enumerate(line):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            row[i] = (v + (a + b) // 2) & 0xFF
        elif kind == 4:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (v + pred) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter type {kind}")
    return np.array(row, dtype=np.uint8)


def _window(size: tuple[int, int]) -> str:
    return f"--window-size={size[0]},{size[1]}"


def _url(url_or_path: str | Path) -> str:
    text = str(url_or_path)
    if "://" in text:
        return text
    return Path(text).resolve().as_uri()


def _run(args: list[str], url_or_path: str | Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium, or set YIZHAN_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="yizhan-chromium-") as profile:
        cmd = [binary, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args, _url(url_or_path)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done


def page_width(page: Any) -> int:
    """The width a page takes in CSS pixels (``document.documentElement.scrollWidth``), measured once the page has
    loaded: a click that navigates returns when the new page commits, before its style sheet applies, and an
    unstyled page is wider than a phone."""
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))


def open_map_file(browser: Any, path: Path, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    """A written map page ``path`` in Playwright's ``browser`` at ``viewport`` (a touch screen when it is phone
    width, under 600 px), every request off the disk refused (tiles fail, as offline), once its script has set up
    ``window.yizhanMap``: the context, the page and the page's script errors as they come."""
    phone = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=phone, is_mobile=phone)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                  else route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_function("window.yizhanMap !== undefined")
    return context, page, errors
