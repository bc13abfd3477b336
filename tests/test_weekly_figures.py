"""Hour masks (weekly.masks) and coverage by hour (weekly.figures), each checked against plain loops over pairs and
hours on small seeded inputs; the stations' masks come from real opening_hours rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yizhan.errors import InvalidInput
from yizhan.weekly.availability import station_open
from yizhan.weekly.figures import hour_figures
from yizhan.weekly.masks import covered_masks, hours_set, pack, unpack
from yizhan.weekly.profile import DEFAULT_PROFILE, demand_by_hour
from yizhan.weekly.week import HOURS, LABELS_EN, LABELS_ZH, NIGHT

RULES = ["24/7", "Mo-Fr 09:00-17:00", "Mo-Fr 08:30-12:00,14:30-18:00; PH off", "Mo-Su 10:00-22:00",
         "Mo-Su 06:00-22:00", "Mo-Sa 07:00-21:00", 'unknown "不定时"', "Sa,Su 11:00-14:00"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=HOURS, max_size=HOURS), min_size=0, max_size=5))
def test_pack_round_trip_and_bit_order(rows: list[list[bool]]) -> None:
    m = np.array(rows, dtype=bool).reshape(len(rows), HOURS)
    p = pack(m)
    assert p.shape == (len(rows), 21) and p.dtype == np.uint8
    assert (unpack(p) == m).all()
    assert hours_set(p).tolist() == m.sum(axis=1).tolist()
    for i in range(len(rows)):
        for h in range(HOURS):
            assert bool((p[i, h // 8] >> (h % 8)) & 1) == m[i, h]


def test_pack_refuses_other_shapes() -> None:
    with pytest.raises(InvalidInput, match="168 hours"):
        pack(np.zeros((2, 24), dtype=bool))
    with pytest.raises(InvalidInput, match="21 bytes"):
        unpack(np.zeros((2, 20), dtype=np.uint8))


def random_pairs(rng: np.random.Generator, n_loc: int, n_site: int, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    dem = rng.integers(0, n_loc, n_pairs)
    site = rng.integers(0, n_site, n_pairs)
    key = np.unique(dem * n_site + site)
    return key // n_site, key % n_site  # sorted by demand then site, no repeats, as Pairs are


@pytest.mark.parametrize("chunk", [1, 7, 1_000_000])
def test_covered_masks_is_the_or_over_each_locations_sites(chunk: int) -> None:
    rng = np.random.default_rng(5)
    avail = station_open(RULES)
    n_loc = 60
    dem, site = random_pairs(rng, n_loc, len(RULES), 150)
    got = covered_masks(dem, site, pack(avail.open), n_loc, chunk=chunk)
    expected = np.zeros((n_loc, HOURS), dtype=bool)
    for d, s in zip(dem, site, strict=True):
        for h in range(HOURS):
            expected[d, h] |= avail.open[s, h]
    assert (unpack(got) == expected).all()
    without = np.setdiff1d(np.arange(n_loc), dem)
    assert len(without) and not got[without].any()
    shuffled = rng.permutation(len(dem))
    assert (covered_masks(dem[shuffled], site[shuffled], pack(avail.open), n_loc, chunk=chunk) == got).all()


def test_covered_masks_refuses_bad_pairs() -> None:
    with pytest.raises(InvalidInput, match="outside"):
        covered_masks(np.array([0, 3]), np.array([0, 0]), np.zeros((1, 21), np.uint8), 3)


def loop_figures(cov: np.ndarray, dem: np.ndarray, owner: np.ndarray, n_units: int) -> dict[str, np.ndarray]:
    """The figures by plain loops over locations and hours."""
    n_loc = len(cov)
    out = {k: np.zeros(HOURS) for k in ("demand", "covered")}
    out["uncovered"] = np.zeros(n_loc)
    out["gap"] = np.zeros(n_loc, dtype=bool)
    out["gap_demand"] = np.zeros(n_loc)
    out["unit_demand"] = np.zeros((n_units + 1, HOURS))
    out["unit_covered"] = np.zeros((n_units + 1, HOURS))
    out["hours"] = np.zeros(n_loc, dtype=int)
    for i in range(n_loc):
        day_cov = False
        night_miss = 0.0
        for h in range(HOURS):
            d = dem[i, h]
            out["demand"][h] += d
            out["unit_demand"][owner[i], h] += d
            out["hours"][i] += int(cov[i, h])
            if cov[i, h]:
                out["covered"][h] += d
                out["unit_covered"][owner[i], h] += d
                if not NIGHT[h]:
                    day_cov = True
            else:
                out["uncovered"][i] += d
                if NIGHT[h]:
                    night_miss += d
        if day_cov and night_miss > 0:
            out["gap"][i] = True
            out["gap_demand"][i] = night_miss
    return out


@pytest.mark.parametrize("chunk", [5, 10_000_000])
def test_hour_figures_match_plain_loops(chunk: int) -> None:
    rng = np.random.default_rng(7)
    avail = station_open(RULES)
    n_loc, n_units = 80, 3
    dem, site = random_pairs(rng, n_loc, len(RULES), 120)
    masks = covered_masks(dem, site, pack(avail.open), n_loc)
    items = 600
    loc = rng.integers(0, n_loc, items)
    hour = np.where(rng.random(items) < 0.2, -1, rng.integers(0, HOURS, items))
    weight = rng.integers(1, 4, items).astype(float)
    demand = demand_by_hour(loc, hour, weight, n_loc, DEFAULT_PROFILE)
    owner = rng.integers(-1, n_units, n_loc)  # -1: in no unit
    f = hour_figures(masks, demand, open_hours=avail.open, owner=owner, n_units=n_units, chunk=chunk)
    ref = loop_figures(unpack(masks), demand.toarray(), np.where(owner < 0, n_units, owner), n_units)
    assert f.demand == pytest.approx(ref["demand"]) and f.covered == pytest.approx(ref["covered"])
    assert f.uncovered == pytest.approx(ref["uncovered"])
    assert f.night_gap.tolist() == ref["gap"].tolist() and f.night_gap.any() and not f.night_gap.all()
    assert f.night_gap_demand == pytest.approx(ref["gap_demand"])
    assert f.unit_demand == pytest.approx(ref["unit_demand"]) and f.unit_covered == pytest.approx(ref["unit_covered"])
    assert f.hours_covered.tolist() == ref["hours"].tolist()
    table = f.unit_table(["甲", "乙", "丙"])
    for name, u in zip(["甲", "乙", "丙", "unassigned"], range(n_units + 1), strict=True):
        rows = table[table["name"] == name]
        assert rows["hour"].tolist() == list(range(HOURS))
        assert rows["demand"].to_numpy() == pytest.approx(ref["unit_demand"][u])
        assert rows["covered"].to_numpy() == pytest.approx(ref["unit_covered"][u])
    assert f.open_stations.tolist() == [int(avail.open[:, h].sum()) for h in range(HOURS)]
    assert f.uncovered_demand_hours == pytest.approx(weight.sum() - ref["covered"].sum())
    share = f.share
    assert share[f.demand > 0] == pytest.approx(ref["covered"][f.demand > 0] / ref["demand"][f.demand > 0])
    gap = ref["demand"] - ref["covered"]
    worst = f.worst_hours()
    assert len(worst) == 5
    assert [w["uncovered"] for w in worst] == pytest.approx(sorted(gap, reverse=True)[:5])
    h = worst[0]["hour"]
    assert worst[0]["label_zh"] == LABELS_ZH[h] and worst[0]["label_en"] == LABELS_EN[h]
    assert worst[0]["share"] == pytest.approx(ref["covered"][h] / ref["demand"][h])


def test_summary_is_json_ready_and_per_week() -> None:
    import json

    avail = station_open(["Mo-Fr 09:00-17:00"])
    masks = covered_masks(np.array([0]), np.array([0]), pack(avail.open), 2)
    # location 0: 10 orders Monday 10:00 (covered), 4 at Monday 23:00 (night, not covered); location 1: no station
    demand = demand_by_hour(np.array([0, 0, 1]), np.array([10, 23, 12]), np.array([10.0, 4.0, 6.0]), 2)
    f = hour_figures(masks, demand, open_hours=avail.open)
    s = f.summary(measured="points", week_start=avail.week_start.isoformat(), holidays=avail.holidays,
                  unknown_hours_stations=int(avail.unknown.sum()), profile="default", weeks=2.0)
    json.dumps(s)
    assert s["uncovered_demand_hours"] == 10.0 and s["uncovered_demand_hours_per_week"] == 5.0
    assert s["night_gap_cells"] == 1 and s["night_gap_demand"] == 4.0
    assert s["covered_share"] == pytest.approx(0.5) and s["measured"] == "points"
    assert [(w["hour"], w["label_zh"], w["uncovered"]) for w in s["worst_hours"]] == [
        (12, "周一 12时", 6.0), (23, "周一 23时", 4.0)]
    assert f.hours_covered.tolist() == [40, 0]
    units = f.unit_table([], none="（未划入单元）unassigned")
    assert units.columns.tolist() == ["name", "hour", "demand", "covered"] and len(units) == HOURS
    assert units["demand"].sum() == 20.0 and units["covered"].sum() == 10.0
    assert units.loc[units["hour"] == 10, "covered"].tolist() == [10.0]
    assert f.unit_demand.shape == (1, HOURS) and f.unit_demand.sum() == 20.0


def test_hour_figures_refuse_mismatched_inputs() -> None:
    demand = demand_by_hour(np.array([0]), np.array([1]), np.array([1.0]), 2)
    with pytest.raises(InvalidInput, match="must be"):
        hour_figures(np.zeros((3, 21), np.uint8), demand)
    with pytest.raises(InvalidInput, match="owner"):
        hour_figures(np.zeros((2, 21), np.uint8), demand, owner=np.array([0, 5]), n_units=2)
