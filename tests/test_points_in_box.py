"""An area's stored points read within a box (``data.demand_points.stored_points(box=...)``, what a part of a
partitioned run measured on points reads): exactly the points of the whole read that lie in the box, edges
included, in the same order and with the same hours; stored in many blocks as well (blocks outside the box not
read); a box with no point reads empty. Real files, a real PostGIS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from test_demand_points import ZONE, _csv

from yizhan.areas import AreaInfo
from yizhan.data.demand import import_demand
from yizhan.data.demand_points import stored_points

FIELDS = ("x", "y", "lon", "lat", "weight", "hour", "ix", "iy", "ids")


@pytest.mark.parametrize("block", [None, 300, "sorted"])
def test_points_in_a_box_are_the_whole_reads_points_in_it(engine: Engine, wudaokou: AreaInfo, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          block: int | str | None) -> None:
    """One block; blocks of 300 points each spread over the area; blocks of 300 points lying in strips from west to
    east (the file sorted by longitude), so that the box read skips the blocks outside it."""
    from yizhan.data import demand_points

    frame = _csv(tmp_path, "orders.csv", 4000, seed=21, blank_times=50)
    if block == "sorted":
        frame.sort_values("lon").to_csv(tmp_path / "orders.csv", index=False)
    if block is not None:
        monkeypatch.setattr(demand_points, "BLOCK_POINTS", 300)
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou")
    with engine.connect() as conn:
        whole = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE)
        # a box around the middle third, one edge through a stored point (edges are included)
        w, e = np.quantile(whole.x, [0.3, 0.6])
        s, n = np.quantile(whole.y, [0.2, 0.7])
        band = (whole.y >= s) & (whole.y <= n)
        w = float(whole.x[band][np.argmin(np.abs(whole.x[band] - w))])
        got = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE, box=(w, s, e, n))
        none = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE, box=(0.0, 0.0, 1.0, 1.0))
    inside = (whole.x >= w) & (whole.x <= e) & (whole.y >= s) & (whole.y <= n)
    assert 0 < inside.sum() < len(whole) and (whole.x[inside] == w).any()
    for name in FIELDS:
        assert np.array_equal(getattr(got, name), getattr(whole, name)[inside]), name
    assert len(none) == 0 and none.first_time is None
    if block == "sorted":  # the blocks whose box misses the read box are not read
        with engine.connect() as conn:
            read = conn.execute(text("SELECT count(*) FROM demand_point_blocks WHERE east >= :w AND west <= :e "
                                     "AND north >= :s AND south <= :n"), {"w": w, "e": e, "s": s, "n": n}).scalar()
            stored = conn.execute(text("SELECT count(*) FROM demand_point_blocks")).scalar()
        assert stored == 14 and read is not None and 3 <= read <= 6
