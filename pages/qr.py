"""QR codes as inline SVG, for a station's page that a union prints and sticks on the station's door."""

from __future__ import annotations

import segno


def qr_svg(url: str, *, scale: int = 4) -> str:
    """An ``<svg>`` element (no XML declaration, no fixed colours beyond black on white) encoding ``url`` with
    error correction M, each module ``scale`` CSS pixels, with the standard four-module quiet zone."""
    code = segno.make(url, error="m", micro=False)
    return str(code.svg_inline(scale=scale, dark="#000", light="#fff", border=4))
