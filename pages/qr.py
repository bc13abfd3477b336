"""QR codes as inline SVG, for a station's page that a union prints and sticks on the station's door."""

from __future__ import annotations

import segno


def qr_svg(url: str) -> str:
    """An ``<svg>`` element (no XML declaration; black on white) encoding ``url`` with error correction M and the
    standard four-module quiet zone; it has a ``viewBox`` and no fixed size, so it fills the width the page's
    style gives it, on screen and printed."""
    code = segno.make(url, error="m", micro=False)
    return str(code.svg_inline(omitsize=True, dark="#000", light="#fff", border=4))
