"""The synthetic nation's zones and demand lattice (``data.national``): one area per UTM zone China spans, cells on
each zone's own 200 m lattice within their zone, the same result for the same seed, and a zone's points imported
into a real PostGIS area as one cell per point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyproj import Transformer
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area
from yizhan.data.demand import import_demand
from yizhan.data.national import national_demand, national_zones, zone_of
from yizhan.stations.importer import CHINA


def test_zones_cover_china_band_by_band() -> None:
    zones = national_zones()
    assert [z[0] for z in zones] == [f"utm{z}" for z in range(43, 54)]
    assert all(epsg == 32600 + int(name[3:]) for name, epsg, _ in zones)
    assert zones[0][2].bounds[0] == CHINA[0] and zones[-1][2].bounds[2] == CHINA[2]
    assert abs(sum(b.area for _, _, b in zones) - (CHINA[2] - CHINA[0]) * (CHINA[3] - CHINA[1])) < 1e-9
    assert zone_of(np.array([116.4, 120.0, 119.999])).tolist() == [50, 51, 50]


def test_demand_on_each_zones_lattice_and_deterministic() -> None:
    a = national_demand(60_000, seed=5)
    b = national_demand(60_000, seed=5)
    c = national_demand(60_000, seed=6)
    total = sum(len(v[0]) for v in a.values())
    assert 60_000 <= total < 66_000
    zones = {name: epsg for name, epsg, _ in national_zones()}
    for name, (lon, lat, w) in a.items():
        assert (zone_of(lon) == zones[name] - 32600).all()
        assert (w >= 1).all() and w.dtype == np.int64
        x, y = Transformer.from_crs(4326, zones[name], always_xy=True).transform(lon, lat)
        # centres of the zone's 200 m lattice (to the 1e-7 degree the coordinates are rounded to), each cell once
        assert np.abs(np.asarray(x) / 200.0 - 0.5 - np.round(np.asarray(x) / 200.0 - 0.5)).max() < 1e-3
        assert np.abs(np.asarray(y) / 200.0 - 0.5 - np.round(np.asarray(y) / 200.0 - 0.5)).max() < 1e-3
        ij = np.column_stack([np.floor(np.asarray(x) / 200.0), np.floor(np.asarray(y) / 200.0)])
        assert len(np.unique(ij, axis=0)) == len(ij)
        assert np.array_equal(lon, b[name][0]) and np.array_equal(w, b[name][2])
    assert any(not np.array_equal(a[k][2], c[k][2]) for k in a)
    # orders fall off from the centre: Shanghai's cell nearest the centre outweighs its edge on average
    lon, lat, w = a["utm51"]
    d = np.hypot(lon - 121.474, lat - 31.230)
    mine = d < 0.1
    near, far = d < np.percentile(d[mine], 10), mine & (d > np.percentile(d[mine], 60))
    assert near.sum() > 100 and far.sum() > 100
    assert w[near].mean() > 2 * w[far].mean()


def test_a_zone_imports_one_cell_per_point(engine: Engine, tmp_path: Path) -> None:
    lon, lat, w = national_demand(20_000, seed=1)["utm47"]
    path = tmp_path / "utm47.parquet"
    pq.write_table(pa.table({"lon": lon, "lat": lat, "weight": w}), path)
    name, epsg, band = next(z for z in national_zones() if z[0] == "utm47")
    with engine.begin() as conn:
        ensure_area(conn, name, boundary=band, crs_epsg=epsg, source="test")
    summary = import_demand(engine, path, area=name, cell_size_m=200.0)
    assert summary.points == summary.cells == len(lon)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(weight) FROM demand_cells")).scalar() == w.sum()
