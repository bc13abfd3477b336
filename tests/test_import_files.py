"""What gets into the registry: numbers typed in full-width forms, non-finite coordinates (refused by the importer
and impossible to store), ragged CSV rows, column lengths, workbooks with several sheets or formulas, decompression
bombs, other separators, title rows, GeoJSON geometries and CRSs, neutralised spreadsheet cells. Real PostGIS."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from yizhan.errors import ImportRejected
from yizhan.stations.service import import_stations

HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n"


def _write(tmp_path: Path, body: str, name: str = "s.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding=encoding)
    return p


def _stations(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT external_id, name, address, township, seats, stars, opening_hours, "
                                "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations ORDER BY external_id"), conn)


# --- item 2: full-width digits, non-finite coordinates ---------------------------------------------------------

def test_full_width_numbers_are_read_as_the_digits_they_are(engine, wudaokou, tmp_path):
    body = HEADER + "F1,全角,small,１１６.３２０１,４０．００２３,,,,,,１２,３,\n"
    s = import_stations(engine, _write(tmp_path, body))
    assert s.inserted == 1
    row = _stations(engine).iloc[0]
    assert row["lon"] == pytest.approx(116.3201, abs=1e-9)
    assert row["lat"] == pytest.approx(40.0023, abs=1e-9)
    assert (row["seats"], row["stars"]) == (12, 3)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1_16.32", "116,32", "٣٩.٩"])
def test_non_finite_or_unusual_coordinates_are_refused_by_name(engine, wudaokou, tmp_path, value):
    body = HEADER + f'N1,x,small,116.32,"{value}",,,,,,,,\n'
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, _write(tmp_path, body))
    [problem] = info.value.problems
    assert (problem.row, problem.field) == (2, "lat")
    assert "decimal degrees" in problem.expected
    assert _stations(engine).empty


@pytest.mark.parametrize("table", ["stations", "candidate_sites"])
@pytest.mark.parametrize("point", ["ST_MakePoint('NaN', 40)", "ST_MakePoint(116.3, 'Infinity')",
                                   "ST_MakePoint(200, 40)", "'POINT EMPTY'::geometry"])
def test_a_non_finite_point_cannot_be_stored(engine, wudaokou, table, point):
    extra = ("kind", "'small'") if table == "stations" else ("host_type", "'other'")
    source = ", source" if table == "candidate_sites" else ""
    source_value = ", 'test'" if table == "candidate_sites" else ""
    with pytest.raises(IntegrityError, match="finite"), engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {table} (area_id, external_id, name, {extra[0]}{source}, geom) "
                          f"VALUES (:a, 'X', 'x', {extra[1]}{source_value}, ST_SetSRID({point}, 4326))"),
                     {"a": wudaokou.id})
