"""Capacity: 2SFCA and E2SFCA against PySAL ``access`` on the same pairs (to 1e-9), and the loads by hour of the week
against a plain loop over hours, stations and pairs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from access import Access, weights
from access.fca import weighted_catchment
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

from yizhan.capacity.fca import (
    Decay,
    decay_named,
    gaussian_decay,
    no_decay,
    stepwise_decay,
    two_step_fca,
)
from yizhan.capacity.loads import CROWDED_PER_SEAT, hourly_fca, station_loads
from yizhan.coverage.reach import straight_reach
from yizhan.data.sample import SampleArea
from yizhan.stations.hours import is_open

RADIUS = 1000.0
H = 168


def pairs_within(demand_xy: np.ndarray, site_xy: np.ndarray, r: float = RADIUS) -> tuple[np.ndarray, ...]:
    """Every (demand, site, metres) pair within ``r``, sorted by demand then site (metres, one planar CRS)."""
    found = cKDTree(site_xy).query_ball_point(demand_xy, r, return_sorted=True)
    dem = np.repeat(np.arange(len(demand_xy)), [len(f) for f in found])
    site = np.concatenate([np.asarray(f, dtype=np.int64) for f in found]) if len(dem) else np.zeros(0, np.int64)
    return dem, site, np.hypot(*(demand_xy[dem] - site_xy[site]).T)


def instance(seed: int, n: int = 400, m: int = 40, side: float = 6000.0) -> tuple[np.ndarray, ...]:
    """Random demand points and stations in a square of ``side`` metres: pairs, demand, seats (some unknown, some 0)."""
    rng = np.random.default_rng(seed)
    dxy = rng.uniform(0, side, (n, 2))
    sxy = rng.uniform(0, side, (m, 2))
    dem, site, dist = pairs_within(dxy, sxy)
    demand = np.where(rng.random(n) < 0.2, 0.0, rng.exponential(5.0, n))
    seats = rng.integers(0, 15, m).astype(float)
    seats[rng.random(m) < 0.15] = np.nan
    return dem, site, dist, demand, seats


def pysal_weight(decay: Decay):  # PySAL's weight functions are untyped callables
    if decay.kind == "none":
        return None
    if decay.kind == "stepwise":
        return weights.step_fn(dict(decay.steps))
    return weights.gaussian(decay.sigma_m)


def pysal_fca(dem: np.ndarray, site: np.ndarray, dist: np.ndarray, demand: np.ndarray, seats: np.ndarray,
              decay: Decay) -> tuple[np.ndarray, np.ndarray]:
    """PySAL ``access``: accessibility per location (NaN where it gives none) and catchment demand per station."""
    n, m = len(demand), len(seats)
    demand_df = pd.DataFrame({"geoid": np.arange(n), "orders": demand})
    supply_df = pd.DataFrame({"geoid": np.arange(m), "seats": seats})
    cost_df = pd.DataFrame({"origin": dem, "dest": site, "cost": dist})
    a = Access(demand_df=demand_df, demand_index="geoid", demand_value="orders", supply_df=supply_df,
               supply_index="geoid", supply_value="seats", cost_df=cost_df, cost_origin="origin", cost_dest="dest",
               cost_name="cost")
    fn = pysal_weight(decay)
    if decay.kind == "none":
        out = a.two_stage_fca(name="fca", max_cost=decay.radius_m)
    else:
        out = a.enhanced_two_stage_fca(name="fca", max_cost=decay.radius_m, weight_fn=fn)
    acc = out["fca_seats"].reindex(np.arange(n)).to_numpy(dtype=float)
    catch = weighted_catchment(demand_df, cost_df, decay.radius_m, cost_source="origin", cost_dest="dest",
                               cost_cost="cost", loc_index="geoid", loc_value="orders", weight_fn=fn)
    return acc, catch.reindex(np.arange(m)).fillna(0.0).to_numpy(dtype=float)


DECAYS = [no_decay(RADIUS), stepwise_decay(RADIUS), gaussian_decay(RADIUS)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("decay", DECAYS, ids=lambda d: d.kind)
def test_equal_to_pysal_access(seed: int, decay: Decay) -> None:
    dem, site, dist, demand, seats = instance(seed)
    got = two_step_fca(dem, site, dist, demand, seats, decay=decay)
    ref_acc, ref_catch = pysal_fca(dem, site, dist, demand, seats, decay)
    np.testing.assert_allclose(got.catchment, ref_catch, rtol=1e-9, atol=1e-12)
    # PySAL gives inf where a station with seats has no demand within reach, and nothing where no station is
    empty = (got.catchment == 0) & (np.nan_to_num(seats) > 0)
    reaches_empty = np.isin(np.arange(len(demand)), dem[np.isin(site, np.flatnonzero(empty))])
    assert np.isinf(ref_acc[reaches_empty]).all()
    reaches_none = ~np.isin(np.arange(len(demand)), dem)
    assert reaches_none.any() and np.isnan(ref_acc[reaches_none]).all()
    assert (got.accessibility[reaches_none] == 0).all()
    ok = ~reaches_empty & ~reaches_none
    assert ok.sum() > 100 and (got.accessibility[ok] > 0).sum() > 50
    np.testing.assert_allclose(got.accessibility[ok], ref_acc[ok], rtol=1e-9, atol=1e-12)
    assert got.without_seats.sum() == np.isnan(seats).sum() > 0
    assert np.isnan(got.ratio[np.isnan(seats)]).all()


def test_stepwise_and_gaussian_weights_are_pysal_s() -> None:
    d = np.array([0.0, 100.0, 333.3, RADIUS / 3, 333.34, 500.0, 2 * RADIUS / 3, 700.0, 999.9, RADIUS, 1000.01, 5e3])
    step = stepwise_decay(RADIUS)
    fn = weights.step_fn(dict(step.steps))
    np.testing.assert_array_equal(step.weights(d), [fn(x) if x <= RADIUS else 0.0 for x in d])
    assert step.weights(np.array([RADIUS / 3, RADIUS / 3 + 1e-6]))[0] == 1.0
    assert step.weights(np.array([RADIUS / 3 + 1e-6]))[0] == 0.68
    g = gaussian_decay(RADIUS)
    np.testing.assert_allclose(g.weights(d), [weights.gaussian(0.38 * RADIUS)(x) if x <= RADIUS else 0.0 for x in d],
                               rtol=1e-15)
    np.testing.assert_array_equal(no_decay(RADIUS).weights(d), (d <= RADIUS).astype(float))
    assert decay_named("gaussian", 500.0).sigma_m == pytest.approx(190.0)
    assert [decay_named(k, RADIUS).method for k in ("none", "stepwise", "gaussian")] == ["2SFCA", "E2SFCA", "E2SFCA"]
    described = json.loads(json.dumps(step.describe()))
    assert described["steps"][1] == {"bound_m": pytest.approx(2 * RADIUS / 3), "weight": 0.68}


def test_zero_demand_everywhere_and_in_one_catchment() -> None:
    dem, site, dist, demand, seats = instance(7)
    got = two_step_fca(dem, site, dist, np.zeros_like(demand), seats, decay=no_decay(RADIUS))
    assert (got.catchment == 0).all() and np.isnan(got.ratio).all() and (got.accessibility == 0).all()
    # one station's catchment emptied: its ratio is NaN, every other figure is PySAL's
    j = int(np.bincount(site).argmax())
    emptied = demand.copy()
    emptied[dem[site == j]] = 0.0
    seats = np.nan_to_num(seats, nan=3.0)
    seats[j] = 8.0
    got = two_step_fca(dem, site, dist, emptied, seats, decay=stepwise_decay(RADIUS))
    assert got.catchment[j] == 0 and np.isnan(got.ratio[j])
    ref_acc, _ = pysal_fca(dem, site, dist, emptied, seats, stepwise_decay(RADIUS))
    ok = np.isfinite(ref_acc)
    assert not ok[dem[site == j]].any()
    np.testing.assert_allclose(got.accessibility[ok], ref_acc[ok], rtol=1e-9, atol=1e-12)


def test_station_reaching_nobody_and_point_reaching_no_station() -> None:
    demand_xy = np.array([[0.0, 0.0], [300.0, 0.0], [900.0, 0.0], [5000.0, 5000.0]])
    site_xy = np.array([[100.0, 0.0], [800.0, 0.0], [-9000.0, 0.0]])  # the third reaches nobody
    dem, site, dist = pairs_within(demand_xy, site_xy)
    demand = np.array([4.0, 2.0, 6.0, 9.0])
    seats = np.array([3.0, 5.0, 7.0])
    got = two_step_fca(dem, site, dist, demand, seats, decay=no_decay(RADIUS))
    # by hand: station 0 reaches points 0, 1, 2 (12 orders), station 1 reaches 0, 1, 2 (12 orders)
    np.testing.assert_allclose(got.catchment, [12.0, 12.0, 0.0])
    np.testing.assert_allclose(got.ratio, [3 / 12, 5 / 12, np.nan])
    np.testing.assert_allclose(got.accessibility, [8 / 12, 8 / 12, 8 / 12, 0.0])
    ref_acc, _ = pysal_fca(dem, site, dist, demand, seats, no_decay(RADIUS))
    np.testing.assert_allclose(got.accessibility[:3], ref_acc[:3], rtol=1e-12)
    assert np.isnan(ref_acc[3])


def test_pairs_in_any_order_and_repeated() -> None:
    dem, site, dist, demand, seats = instance(4)
    want = two_step_fca(dem, site, dist, demand, seats, decay=gaussian_decay(RADIUS))
    order = np.random.default_rng(0).permutation(len(dem))
    # a pair repeated farther away (another route) counts once, at its shortest distance
    d2 = np.concatenate([dem[order], dem[:50]])
    s2 = np.concatenate([site[order], site[:50]])
    m2 = np.concatenate([dist[order], np.minimum(dist[:50] + 200.0, RADIUS)])
    got = two_step_fca(d2, s2, m2, demand, list(np.where(np.isnan(seats), None, seats)), decay=gaussian_decay(RADIUS))
    np.testing.assert_allclose(got.accessibility, want.accessibility, rtol=1e-12)
    np.testing.assert_allclose(got.catchment, want.catchment, rtol=1e-12)
    np.testing.assert_array_equal(got.without_seats, want.without_seats)


def test_pairs_beyond_the_radius_left_out() -> None:
    """Pairs farther than the decay's radius take no part: the same as leaving them out beforehand."""
    dem, site, dist, demand, seats = instance(6)
    near = dist <= 600.0
    for decay in (no_decay(600.0), stepwise_decay(600.0), gaussian_decay(600.0)):
        got = two_step_fca(dem, site, dist, demand, seats, decay=decay)
        want = two_step_fca(dem[near], site[near], dist[near], demand, seats, decay=decay)
        assert (~near).sum() > 100
        np.testing.assert_array_equal(got.accessibility, want.accessibility)
        np.testing.assert_array_equal(got.catchment, want.catchment)


def test_bad_input_named() -> None:
    dem, site, dist, demand, seats = instance(5, n=30, m=5)
    with pytest.raises(ValueError, match=r"座位数.*seats must be.*-2"):
        two_step_fca(dem, site, dist, demand, [1, -2, 3, 4, 5], decay=no_decay(RADIUS))
    with pytest.raises(ValueError, match=r"需求.*demand must be.*location 3: -1.5"):
        two_step_fca(dem, site, dist, np.r_[demand[:3], -1.5, demand[4:]], seats, decay=no_decay(RADIUS))
    with pytest.raises(ValueError, match=r"需求.*demand must be.*location 7, hour 40: nan"):
        p = np.zeros((30, H))
        p[7, 40] = np.nan
        hourly_fca(dem, site, dist, p, seats, np.ones((5, H), dtype=bool), decay=no_decay(RADIUS), weeks=1.0)
    with pytest.raises(ValueError, match=r"距离.*distance must be.*pair 0: -1.0"):
        two_step_fca(dem, site, np.r_[-1.0, dist[1:]], demand, seats, decay=no_decay(RADIUS))
    with pytest.raises(ValueError, match=r"下标越界.*station 0–3"):
        two_step_fca(dem, site, dist, demand, seats[:4], decay=no_decay(RADIUS))
    with pytest.raises(ValueError, match=r"未知的距离衰减.*'linear'.*none, stepwise, gaussian"):
        decay_named("linear", RADIUS)
    with pytest.raises(ValueError, match=r"半径.*radius must be.*0"):
        no_decay(0)


# -- by hour of the week -----------------------------------------------------------------------------------------
def hourly_instance(seed: int = 11) -> tuple[np.ndarray, ...]:
    """A small area: 60 points, 8 stations (one never open, one without seats, one of 0 seats), orders at hours."""
    rng = np.random.default_rng(seed)
    n, m = 60, 8
    dxy = rng.uniform(0, 3000, (n, 2))
    sxy = rng.uniform(0, 3000, (m, 2))
    dem, site, dist = pairs_within(dxy, sxy)
    p = np.zeros((n, H))
    hot = rng.choice(H, 30, replace=False)
    for i in range(n):
        hs = rng.choice(hot, rng.integers(0, 6))
        p[i, hs] += rng.integers(1, 40, len(hs))
    open_ = rng.random((m, H)) < 0.6
    open_[0] = False
    seats = rng.integers(2, 10, m).astype(float)
    seats[1] = np.nan
    seats[2] = 0.0
    return dem, site, dist, p, seats, open_


def loop_reference(dem: np.ndarray, site: np.ndarray, dist: np.ndarray, p: np.ndarray, seats: np.ndarray,
                   open_: np.ndarray, decay: Decay, weeks: float, limit: float) -> dict[str, object]:
    """The same figures with plain Python loops over hours, stations and pairs."""
    n, m = p.shape[0], len(seats)
    w = [float(decay.weights(np.array([d]))[0]) for d in dist]
    catch = np.zeros((m, H))
    for h in range(H):
        for k in range(len(dem)):
            catch[site[k], h] += w[k] * p[dem[k], h] / weeks
    ratio = np.full((m, H), np.nan)
    for j in range(m):
        for h in range(H):
            if not np.isnan(seats[j]) and catch[j, h] > 0:
                ratio[j, h] = (seats[j] if open_[j, h] else 0.0) / catch[j, h]
    area = p.sum(axis=0) / weeks
    peak = max(range(H), key=lambda h: (area[h], -h))
    acc = np.zeros(n)
    for k in range(len(dem)):
        if not np.isnan(ratio[site[k], peak]):
            acc[dem[k]] += w[k] * ratio[site[k], peak]
    rows = []
    for j in range(m):
        hours = [h for h in range(H) if open_[j, h]]
        if not hours:
            rows.append((None, 0.0, np.nan, False))
            continue
        best = max(hours, key=lambda h: (catch[j, h], -h))
        per = catch[j, best] / seats[j] if not np.isnan(seats[j]) and seats[j] > 0 else np.nan
        rows.append((best, catch[j, best], per, bool(per > limit)))
    return {"catch": catch, "ratio": ratio, "peak": peak, "acc": acc, "rows": rows}


@pytest.mark.parametrize("decay", DECAYS, ids=lambda d: d.kind)
def test_hourly_loads_against_a_plain_loop(decay: Decay) -> None:
    dem, site, dist, p, seats, open_ = hourly_instance()
    weeks, limit = 2.0, 4.0
    ref = loop_reference(dem, site, dist, p, seats, open_, decay, weeks, limit)
    got = station_loads(dem, site, dist, csr_matrix(p), seats, open_, decay=decay, weeks=weeks,
                        crowded_per_seat=limit, distance="network")
    np.testing.assert_allclose(got.hourly.catchment, ref["catch"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.hourly.ratio, ref["ratio"], rtol=1e-12, atol=1e-12)
    assert got.summary["peak_hour"] == ref["peak"]
    np.testing.assert_allclose(got.accessibility, ref["acc"], rtol=1e-12, atol=1e-12)
    t = got.table
    assert list(t.columns) == ["station", "seats", "peak_hour", "peak_demand", "per_seat", "crowded"]
    rows = ref["rows"]
    assert isinstance(rows, list)
    assert [None if pd.isna(x) else int(x) for x in t["peak_hour"]] == [r[0] for r in rows]
    np.testing.assert_allclose(t["peak_demand"], [r[1] for r in rows], rtol=1e-12)
    np.testing.assert_allclose(t["per_seat"], [r[2] for r in rows], rtol=1e-12)
    assert t["crowded"].tolist() == [r[3] for r in rows]
    assert 0 < t["crowded"].sum() < len(t) - 3  # the limit splits this instance
    assert pd.isna(t["seats"][1]) and t["seats"][2] == 0 and pd.isna(t["peak_hour"][0])
    s = json.loads(json.dumps(got.summary))
    assert s["method"] == decay.method and s["decay"]["kind"] == decay.kind and s["distance"] == "network"
    assert (s["stations_without_seats"], s["stations_zero_seats"], s["stations_never_open"]) == (1, 1, 1)
    assert s["crowded"] == t["crowded"].sum()
    per = t["per_seat"].to_numpy()
    assert s["crowded_stations"] == sorted(np.flatnonzero(t["crowded"]).tolist(), key=lambda j: -per[j])
    assert s["radius_m"] == RADIUS and s["weeks"] == weeks and s["crowded_per_seat"] == limit


def test_one_hour_is_two_step_fca_and_pysal() -> None:
    """At any hour, the hourly figures are the 2SFCA of that hour's demand with the open stations' seats."""
    dem, site, dist, p, seats, open_ = hourly_instance(12)
    decay = stepwise_decay(RADIUS)
    hourly = hourly_fca(dem, site, dist, p, seats, open_, decay=decay, weeks=1.0)
    h = hourly.peak_hour
    assert h is not None
    offered = np.where(open_[:, h], seats, np.where(np.isnan(seats), np.nan, 0.0))
    one = two_step_fca(dem, site, dist, p[:, h], offered, decay=decay)
    np.testing.assert_allclose(hourly.catchment[:, h], one.catchment, rtol=1e-12)
    np.testing.assert_allclose(hourly.accessibility(h), one.accessibility, rtol=1e-12)
    ref_acc, _ = pysal_fca(dem, site, dist, p[:, h], offered, decay)
    ok = np.isfinite(ref_acc)
    assert ok.sum() > 20
    np.testing.assert_allclose(one.accessibility[ok], ref_acc[ok], rtol=1e-9, atol=1e-12)


def test_crowded_per_typical_week_and_closed_hours() -> None:
    """One station of 2 seats and 30 orders at Monday noon within reach: 15 a seat over one week, 5 over three."""
    p = np.zeros((2, H))
    p[0, 12] = 30.0
    p[1, 20] = 50.0  # at 20:00 the station is closed: more demand, but not its peak
    open_ = np.zeros((1, H), dtype=bool)
    open_[0, 8:18] = True
    dem, site, dist = np.array([0, 1]), np.array([0, 0]), np.array([200.0, 600.0])
    one = station_loads(dem, site, dist, p, [2], open_, decay=no_decay(RADIUS), weeks=1.0)
    row = one.table.iloc[0]
    assert (row["peak_hour"], row["peak_demand"], row["per_seat"], row["crowded"]) == (12, 30.0, 15.0, True)
    assert CROWDED_PER_SEAT == 10.0 and one.summary["crowded_stations"] == [0]
    assert one.summary["peak_hour"] == 20 and one.summary["peak_demand"] == 50.0
    assert one.hourly.ratio[0, 20] == 0.0 and (one.accessibility == 0).all()  # closed at the area's peak
    three = station_loads(dem, site, dist, p, [2], open_, decay=no_decay(RADIUS), weeks=3.0)
    assert three.table["per_seat"][0] == pytest.approx(5.0) and not three.table["crowded"][0]
    assert three.summary["crowded"] == 0 and three.summary["crowded_stations"] == []
    with pytest.raises(ValueError, match=r"周数.*weeks must be.*0"):
        station_loads(dem, site, dist, p, [2], open_, decay=no_decay(RADIUS), weeks=0)
    with pytest.raises(ValueError, match=r"开放时段.*open hours must be"):
        station_loads(dem, site, dist, p, [2], open_[:, :24], decay=no_decay(RADIUS), weeks=1.0)


def test_no_demand_and_no_stations() -> None:
    open_ = np.ones((2, H), dtype=bool)
    got = station_loads(np.array([0]), np.array([1]), np.array([10.0]), csr_matrix((3, H)), [4, None], open_,
                        decay=no_decay(RADIUS), weeks=1.0)
    assert got.summary["peak_hour"] is None and (got.accessibility == 0).all()
    assert got.table["peak_demand"].tolist() == [0.0, 0.0] and not got.table["crowded"].any()
    none = station_loads(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), csr_matrix((3, H)), [],
                         np.zeros((0, H), dtype=bool), decay=no_decay(RADIUS), weeks=1.0)
    assert len(none.table) == 0 and none.summary["stations"] == 0 and len(none.accessibility) == 3


# -- a real area: the demo sample of the Wudaokou extract (stations with their opening hours, timed orders) ---------
def test_sample_area_against_pysal_and_by_hour(sample_extract: SampleArea) -> None:
    to_m = Transformer.from_crs(4326, sample_extract.crs_epsg, always_xy=True)
    st, dm = sample_extract.stations, sample_extract.demand
    site_xy = np.column_stack(to_m.transform(st["lon"].to_numpy(float), st["lat"].to_numpy(float)))
    dem_xy = np.column_stack(to_m.transform(dm["lon"].to_numpy(float), dm["lat"].to_numpy(float)))
    dem, site, dist = straight_reach(dem_xy, site_xy, RADIUS)
    seats = pd.to_numeric(st["seats"], errors="coerce").to_numpy(float)
    orders = dm["weight"].to_numpy(float)
    for decay in DECAYS:
        got = two_step_fca(dem, site, dist, orders, seats, decay=decay)
        ref_acc, ref_catch = pysal_fca(dem, site, dist, orders, seats, decay)
        np.testing.assert_allclose(got.catchment, ref_catch, rtol=1e-9)
        ok = np.isfinite(ref_acc)
        assert ok.mean() > 0.7  # about a fifth of the orders reach no station within 1 km
        np.testing.assert_allclose(got.accessibility[ok], ref_acc[ok], rtol=1e-9, atol=1e-12)
        assert (got.accessibility[~ok] == 0).all()
    # by hour: each order at its own local hour of the week, stations open by their rules in the week of 13 May 2024
    ts = pd.to_datetime(dm["timestamp"], format="ISO8601")
    hour = (ts.dt.weekday * 24 + ts.dt.hour).to_numpy()
    p = csr_matrix((orders, (np.arange(len(dm)), hour)), shape=(len(dm), H))
    monday = datetime(2024, 5, 13, tzinfo=ZoneInfo("Asia/Shanghai"))
    open_ = np.array([[is_open(rule, monday + timedelta(hours=h, minutes=30)) for h in range(H)]
                      for rule in st["opening_hours"]])
    assert 0 < open_.mean() < 1
    weeks = 1.0
    loads = station_loads(dem, site, dist, p, seats, open_, decay=stepwise_decay(RADIUS), weeks=weeks)
    for h in range(H):
        offered = np.where(open_[:, h], seats, 0.0)
        one = two_step_fca(dem, site, dist, p[:, [h]].toarray().ravel(), offered, decay=stepwise_decay(RADIUS))
        np.testing.assert_allclose(loads.hourly.catchment[:, h], one.catchment, rtol=1e-12)
        np.testing.assert_allclose(np.nan_to_num(loads.hourly.ratio[:, h], nan=-1), np.nan_to_num(one.ratio, nan=-1),
                                   rtol=1e-12)
    t = loads.table
    assert all(open_[j, int(h)] for j, h in zip(t["station"], t["peak_hour"], strict=True) if not pd.isna(h))
    peak = loads.summary["peak_hour"]
    assert peak == int(np.argmax(np.bincount(hour, weights=orders, minlength=H)))
    np.testing.assert_allclose(loads.accessibility, loads.hourly.accessibility(peak))
