"""The map page's JavaScript, CSS and fonts: the vendored Leaflet/Folium files and the page's own glue in
``maps/static``, linked under one URL prefix so a page works offline.

A page written to disk links them relatively as ``yizhan-assets/…`` (:func:`copy_assets` puts the directory beside
the HTML); the API serves the same directory at ``/yizhan-assets``. Each list below pairs the name folium uses for a
link (so a local link replaces folium's CDN one) with a file path under :data:`STATIC_DIR`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from yizhan.outputs import replacing_folder

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Vendored Leaflet/Folium JS, CSS and fonts plus the page glue; the API serves it at ``/yizhan-assets``."""

ASSET_DIR_NAME = "yizhan-assets"
"""Directory name :func:`copy_assets` copies :data:`STATIC_DIR` to, beside the HTML file."""

GLUE_DIR = "yizhan"
"""This project's own page script and stylesheet under :data:`STATIC_DIR` (the other directories are vendored)."""

MAP_JS: tuple[tuple[str, str], ...] = (
    ("leaflet", "leaflet-1.9.3/leaflet.js"),
    ("jquery", "jquery-3.7.1/jquery.min.js"),
    ("bootstrap", "bootstrap-5.2.2/bootstrap.bundle.min.js"),
    ("awesome_markers", "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.js"),
)
MAP_CSS: tuple[tuple[str, str], ...] = (
    ("leaflet_css", "leaflet-1.9.3/leaflet.css"),
    ("bootstrap_css", "bootstrap-5.2.2/bootstrap.min.css"),
    ("awesome_markers_font_css", "fontawesome-free-6.2.0/css/all.min.css"),
    ("awesome_markers_css", "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.css"),
    ("awesome_rotate_css", "folium-0.20.0/leaflet.awesome.rotate.min.css"),
)
HEAT_JS: tuple[tuple[str, str], ...] = (("leaflet-heat.js", "leaflet.heat-0.2.0/leaflet-heat.js"),)
CLUSTER_JS: tuple[tuple[str, str], ...] = (
    ("markerclusterjs", "leaflet.markercluster-1.1.0/leaflet.markercluster.js"),
)
CLUSTER_CSS: tuple[tuple[str, str], ...] = (
    ("markerclustercss", "leaflet.markercluster-1.1.0/MarkerCluster.css"),
    ("markerclusterdefaultcss", "leaflet.markercluster-1.1.0/MarkerCluster.Default.css"),
)
GLUE_JS: tuple[tuple[str, str], ...] = (("yizhan_map_js", f"{GLUE_DIR}/map.js"),)
"""The page script: coordinate-system switch, station popups, compact stations, station search."""
GLUE_CSS: tuple[tuple[str, str], ...] = (("yizhan_map_css", f"{GLUE_DIR}/map.css"),)
"""The panels, markers, search box and popups' styles."""

_EXTERNAL_SCHEMES = ("http://", "https://", "//")


def links(prefix: str, files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """folium ``default_js``/``default_css`` entries for ``files`` under the URL ``prefix`` (no trailing slash)."""
    return [(name, f"{prefix}/{rel}") for name, rel in files]


def asset_urls(page: str) -> list[str]:
    """Every URL a page loads as ``<script src>`` or ``<link href>``, in document order."""
    parser = _LinkParser()
    parser.feed(page)
    parser.close()
    return parser.urls


def external_urls(page: str) -> list[str]:
    """The ``<script src>``/``<link href>`` URLs of a page that are absolute http(s) or protocol-relative.

    URLs inside JavaScript strings (the tile URL template) are not links and are not returned.
    """
    return [u for u in asset_urls(page) if u.lower().startswith(_EXTERNAL_SCHEMES)]


def is_vendored(url: str) -> bool:
    """Whether ``url`` is ``yizhan-assets/<file>`` for a file that exists in :data:`STATIC_DIR`."""
    head, _, rel = url.partition("/")
    return head == ASSET_DIR_NAME and bool(rel) and ".." not in rel.split("/") and (STATIC_DIR / rel).is_file()


def copy_assets(directory: Path) -> Path:
    """Copy :data:`STATIC_DIR` to ``directory / "yizhan-assets"`` whole or not at all (an older copy is replaced
    only once the new one is complete; a failed copy leaves no half-copied folder); return that path.

    Raises
    ------
    OSError
        The folder cannot take the copy (full, read-only, not a folder); the error names the target folder.
    """
    target = Path(directory) / ASSET_DIR_NAME
    with replacing_folder(target) as tmp:
        for src in sorted(STATIC_DIR.rglob("*")):
            dst = tmp / src.relative_to(STATIC_DIR)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)  # raises at the first failure with its errno (copytree collects them)
        tmp.mkdir(exist_ok=True)
    return target


class _LinkParser(HTMLParser):
    """Collects ``<script src>`` and ``<link href>`` URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        key = {"script": "src", "link": "href"}.get(tag)
        if key is None:
            return
        for name, value in attrs:
            if name == key and value:
                self.urls.append(value.strip())

    handle_startendtag = handle_starttag
