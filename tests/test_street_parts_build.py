"""An area's street graphs per partition built again replace the old set whole: built beside it, then put in its
place, so a run never reads a half-written set and a failed build leaves the old one as it was (real extract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yizhan.areas import AreaInfo
from yizhan.coverage.streets import build_street_parts, street_parts_dir, street_parts_manifest
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
