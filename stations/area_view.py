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
SELECT a.id, a.name, coalesce(a.display_name, a.name) AS label,
       (SELECT count(*) FROM stations s WHERE s.area_id = a.id AND s.status = 'active') AS stations
FROM areas a
WHERE CAST(:area AS text) IS NULL OR a.name = :area
ORDER BY stations DESC, a.boundary IS NULL, a.name
LIMIT 1
"""
_EXTENT = """
SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
FROM (SELECT coalesce((SELECT ST_Envelope(boundary) FROM areas WHERE id = :a),
                      (SELECT ST_Envelope(ST_Collect(geom)) FROM stations WHERE area_id = :a AND status = 'active'))
      AS b) e
WHERE b IS NOT NULL
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
    extent = None if row is None else conn.execute(text(_EXTENT), {"a": row.id}).first()
    if row is None or extent is None:
        if area is not None:
            raise NotFound(f"没有区域 {area!r} / no area named {area!r} with a boundary or stations")
        return None
    w, s, e, n = (float(v) for v in extent)
    return AreaView(row.name, row.label, (w, s, e, n), int(row.stations))
