"""An area's street graphs per partition built again replace the old set whole: built beside it, then put in its
place, so a run never reads a half-written set and a failed build leaves the old one as it was (real extract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yizhan.areas import AreaInfo
from yizhan.coverage.partitioned import halos
from yizhan.coverage.partitions import PartitionPlan, street_parts_halo
from yizhan.coverage.streets import build_street_parts, street_parts_dir, street_parts_manifest
from yizhan.data.demand import MAX_CELL_SIZE_M
from yizhan.errors import InvalidInput
from yizhan.settings import Settings


def _tiles(manifest: Path) -> int:
    return len(json.loads(manifest.read_text(encoding="utf-8"))["parts"])


def test_a_rebuild_replaces_the_set_and_a_failed_one_keeps_it(sample_area: AreaInfo, settings: Settings,
                                                              extracts: tuple[Path, Path], tmp_path: Path) -> None:
    first = build_street_parts(sample_area, extracts[1], profile="walk", tiles=(2, 2), halo_m=2500,
                               settings=settings)
    assert first == street_parts_manifest(sample_area, "walk", settings) and _tiles(first) == 4
    second = build_street_parts(sample_area, extracts[1], profile="walk", tiles=(3, 1), halo_m=2500,
                                settings=settings)
    assert second == first and _tiles(second) == 3
    # the old set's tiles are gone, the new set's all there; nothing left beside it
    files = json.loads(second.read_text(encoding="utf-8"))["parts"]
    kept = sorted(p.name for p in second.parent.glob("part-*.npz"))
    assert kept == sorted(f["file"] for f in files if f["file"])
    assert sorted(p.name for p in street_parts_dir(sample_area, settings).iterdir()) == ["walk"]
    before = second.read_bytes()

    not_pbf = tmp_path / "broken.osm.pbf"
    not_pbf.write_bytes(b"this is not an extract")
    with pytest.raises(InvalidInput, match="无法读取"):
        build_street_parts(sample_area, not_pbf, profile="walk", tiles=(2, 2), halo_m=2500, settings=settings)
    assert street_parts_manifest(sample_area, "walk", settings) == second and second.read_bytes() == before
    assert sorted(p.name for p in street_parts_dir(sample_area, settings).iterdir()) == ["walk"]
    with pytest.raises(InvalidInput):
        build_street_parts(sample_area, tmp_path / "missing.osm.pbf", profile="walk", tiles=(2, 2), halo_m=2500,
                           settings=settings)


@pytest.mark.parametrize("cell_m", [100.0, 200.0, 1000.0, 5000.0, None])
@pytest.mark.parametrize("radius_m", [50.0, 500.0, 1000.0, 3000.0])
def test_the_default_halo_is_what_a_run_in_parts_needs(cell_m: float | None, radius_m: float) -> None:
    """``yizhan network parts``'s default halo (``street_parts_halo``) is never refused by a run along the streets
    at the settings' radius on the area's cells (measured on the points, the widest margin), whatever their size."""
    size = cell_m if cell_m is not None else MAX_CELL_SIZE_M
    plan = PartitionPlan(area_id=1, layer_id=1, crs_epsg=32650, by="tiles", parts=(), outer=(0.0, 0.0, 1.0, 1.0),
                         margin_m=size * 0.5**0.5 + 1.0, cells=0)
    needed = halos(plan, "network", radius_m, 30.0, "points")[1]
    assert needed <= street_parts_halo(radius_m, 30.0, cell_m) <= needed + 150
