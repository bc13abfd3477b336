"""The area a rider's page opens on before it knows where the rider is: the one asked for, else the area holding
the most active stations, with its extent so the page can show its streets and stations at once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from yizhan.errors import NotFound


@dataclass(frozen=True)
class AreaView:
    """Where the rider's map starts.

    Attributes
    ----------
    name : str
        The area's code name.
    label : str
        The name people use (its display name), else the code name.
    bounds : tuple of float
        (west, south, east, north), WGS 84 degrees: the area's boundary, else the extent of its stations.
    stations : int
        How many active stations it holds.
    """

    name: str
    label: str
    bounds: tuple[float, float, float, float]
    stations: int

    @property
    def centre(self) -> tuple[float, float]:
        """The middle of ``bounds``: (lon, lat), WGS 84 degrees."""
        w, s, e, n = self.bounds
        return (w + e) / 2, (s + n) / 2


_VIEW = """
SELECT a.name, coalesce(a.display_name, a.name) AS label, count(s.id) AS stations,
       ST_XMin(e.box) AS w, ST_YMin(e.box) AS s, ST_XMax(e.box) AS e, ST_YMax(e.box) AS n
FROM areas a
LEFT JOIN stations s ON s.area_id = a.id AND s.status = 'active'
CROSS JOIN LATERAL (SELECT coalesce(ST_Envelope(a.boundary),
                                    (SELECT ST_Envelope(ST_Collect(t.geom)) FROM stations t
                                     WHERE t.area_id = a.id AND t.status = 'active')) AS box) e
WHERE (CAST(:area AS text) IS NULL OR a.name = :area) AND e.box IS NOT NULL
GROUP BY a.id, e.box
ORDER BY count(s.id) DESC, a.name
LIMIT 1
"""


def area_view(conn: Connection, area: str | None = None) -> AreaView | None:
    """The area named ``area``, else the one with the most active stations (by name on a tie); None when no area
    has a boundary or a station to show.

    Raises
    ------
    NotFound
        When ``area`` is given and no area has that name (or it has neither boundary nor stations).
    """
    row = conn.execute(text(_VIEW), {"area": area}).first()
    if row is None:
        if area is not None:
            raise NotFound(f"没有区域 {area!r} / no area named {area!r} with a boundary or stations")
        return None
    return AreaView(row.name, row.label, (float(row.w), float(row.s), float(row.e), float(row.n)), int(row.stations))
