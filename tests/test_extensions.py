"""Longer hours versus new sites: the extension rule on real opening-hours rules, the (place, hour) element model
against brute force over every set of actions within the caps, the caps, and the service and the CLI on a real
PostGIS with the demo data."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from cli_runner import run_cli
from scipy.sparse import csr_matrix

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.reach import straight_reach
from yizhan.errors import InvalidInput
from yizhan.siting.candidates import candidates_from_extract, filter_candidates, store_candidates
from yizhan.siting.extensions import (
    KINDS,
    extension_hours,
    hour_actions,
    hour_model,
    mask_rule,
    uncovered_after,
    until_hour,
)
from yizhan.siting.recommend import recommend_hours
from yizhan.siting.runs import load_recommendation, recommendation_of
from yizhan.siting.solver import solve_mclp_kinds
from yizhan.weekly.availability import station_open
from yizhan.weekly.profile import demand_by_hour
from yizhan.weekly.week import HOURS, hours_of


def _open(*rules: str) -> np.ndarray:
    return station_open(list(rules)).open


def test_until_hour_reads_local_times_and_names_bad_ones():
    assert until_hour("22:00") == 22 and until_hour("22") == 22 and until_hour("22点") == 22
    assert until_hour("22:30") == 23  # open 30 minutes of the hour from 22:00: it counts
    assert until_hour("22:29") == 22 and until_hour("24:00") == 24 and until_hour(" 9：45 ") == 10
    for bad in ("25:00", "24:30", "22:60", "tonight", "", "00:10"):
        with pytest.raises(InvalidInput, match=r"延长至.*extend to") as err:
            until_hour(bad)
        assert "\n" not in str(err.value)


def test_extension_of_a_station_with_two_periods_a_day():
    """08:30–12:00 and 14:30–18:00 on workdays, extended to 22:00: the lunch break and the evening to 22:00 are
    added on workdays, nothing at the weekend (it never opens then)."""
    o = _open("Mo-Fr 08:30-12:00,14:30-18:00")
    assert mask_rule(o[0]) == "Mo-Fr 08:00-12:00,14:00-18:00"  # an hour counts when open 30 minutes of it
    ext = extension_hours(o, until_hour("22:00"))
    expected = np.zeros(HOURS, bool)
    expected[hours_of(range(5), 12, 14)] = True
    expected[hours_of(range(5), 18, 22)] = True
    assert (ext[0] == expected).all()
    assert mask_rule(ext[0]) == "Mo-Fr 12:00-14:00,18:00-22:00"
    # the rule written for the added hours reads back as the same hours
    assert (station_open([mask_rule(ext[0])]).open[0] == expected).all()


def test_extension_rule_on_other_days_and_overnight_hours():
    o = _open("Mo-Sa 10:00-14:00; Su off", "Mo-Su 18:00-02:00", "24/7", "Mo-Fr 09:00-23:00")
    ext = extension_hours(o, 22)
    # a day it opens: from its opening to 22:00; Sunday: nothing
    assert mask_rule(ext[0]) == "Mo-Sa 14:00-22:00"
    # open from 18:00 past midnight: already open to 22:00, and the hours after midnight begin no period
    assert not ext[1].any()
    assert not ext[2].any() and not ext[3].any()  # round the clock; open past 22:00 already
    acts = hour_actions(o, end_hour=22, n_sites=2, site_open=np.ones(HOURS, bool))
    kinds = [KINDS[k] for k in acts.kind]
    assert kinds.count("extend") == 1 and kinds.count("24h") == 3 and kinds.count("site") == 2
    assert acts.hours[kinds.index("24h")].sum() == HOURS - 6 * 4  # every closed hour of the first station


def _small_area(seed: int) -> dict[str, object]:
    """Thirty places, five stations with real rules and four candidate sites on a 3 km square (metres), orders at
    random hours of the week and some without a time."""
    rng = np.random.default_rng(seed)
    loc_xy = rng.uniform(0, 3000, (30, 2))
    st_xy = rng.uniform(0, 3000, (5, 2))
    cand_xy = rng.uniform(0, 3000, (4, 2))
    rules = ["Mo-Fr 08:30-12:00,14:30-18:00", "Mo-Su 10:00-20:00", "Mo-Sa 07:00-19:00", "Mo-Su 18:00-02:00",
             "Mo-Fr 11:00-14:00"]
    n_items = 400
    loc = rng.integers(0, 30, n_items)
    hour = np.where(rng.random(n_items) < 0.2, -1, rng.integers(0, HOURS, n_items))
    weight = rng.integers(1, 4, n_items).astype(float)
    demand = demand_by_hour(loc, hour, weight, 30)
    st = straight_reach(loc_xy, st_xy, 900.0)
    cand = straight_reach(loc_xy, cand_xy, 900.0)
    return {"demand": demand, "open": _open(*rules), "st": (st[0], st[1]), "cand": (cand[0], cand[1]),
            "n_cand": len(cand_xy)}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("caps", [(1, 1, 1), (2, 0, 1), (0, 1, 2)])
def test_the_best_actions_match_brute_force_within_the_caps(seed, caps):
    a = _small_area(seed)
    site_open = np.zeros(HOURS, bool)
    site_open[hours_of(range(7), 7, 23)] = True  # new sites open 07:00-23:00 every day
    acts = hour_actions(a["open"], end_hour=22, n_sites=a["n_cand"], site_open=site_open)
    model = hour_model(a["demand"], a["st"], a["open"], a["cand"], acts)
    none = np.empty(0, np.int64)
    base = uncovered_after(a["demand"], a["st"], a["open"], a["cand"], acts, none)
    assert base.sum() == pytest.approx(model.uncovered)  # two ways to the same uncovered demand-hours
    best, best_set = 0.0, ()
    for r in range(len(acts) + 1):
        for sub in itertools.combinations(range(len(acts)), r):
            if (np.bincount(acts.kind[list(sub)], minlength=3) > caps).any():
                continue
            removed = model.uncovered - uncovered_after(a["demand"], a["st"], a["open"], a["cand"], acts,
                                                        np.array(sub, dtype=np.int64)).sum()
            if removed > best + 1e-9:
                best, best_set = removed, sub
    sol = solve_mclp_kinds(model.matrix, acts.kind, caps, time_limit_s=20)
    assert sol.optimal and sol.objective == pytest.approx(best, rel=1e-9), best_set
    assert sol.bound >= best - 1e-9 and sol.gap <= 1e-6
    assert (np.bincount(acts.kind[sol.chosen], minlength=3) <= caps).all()
    # the gains in the ranked order add up to what the chosen actions remove together
    assert sol.gains.sum() == pytest.approx(best) and (np.diff(sol.gains) <= 1e-9).all()
    after = uncovered_after(a["demand"], a["st"], a["open"], a["cand"], acts, sol.chosen).sum()
    assert model.uncovered - after == pytest.approx(best)


def test_caps_hold_and_a_kind_capped_at_zero_is_never_taken():
    a = _small_area(7)
    acts = hour_actions(a["open"], end_hour=22, n_sites=a["n_cand"], site_open=np.ones(HOURS, bool))
    model = hour_model(a["demand"], a["st"], a["open"], a["cand"], acts)
    free = solve_mclp_kinds(model.matrix, acts.kind, (0, 0, 2), time_limit_s=10)
    assert free.objective > 0 and set(KINDS[k] for k in acts.kind[free.chosen]) == {"site"}
    for caps in [(1, 0, 0), (0, 2, 0), (3, 3, 3), (1, 1, 1)]:
        for exact in (True, False):
            sol = solve_mclp_kinds(model.matrix, acts.kind, caps, time_limit_s=10, exact=exact)
            assert (np.bincount(acts.kind[sol.chosen], minlength=3) <= caps).all(), (caps, exact)
            assert sol.bound >= sol.objective - 1e-9
    with pytest.raises(ValueError, match="caps"):
        solve_mclp_kinds(model.matrix, acts.kind, (1, 1), time_limit_s=1)


def test_an_extension_only_counts_the_hours_it_adds():
    """One place, one station open 10:00-20:00 every day within reach; orders at 21:00 on Monday and at 12:00 on
    Tuesday. Extending to 22:00 removes the Monday orders only; a new site open by day removes nothing."""
    demand = csr_matrix((np.array([3.0, 5.0]), (np.array([0, 0]), np.array([21, 24 + 12]))), shape=(1, HOURS))
    o = _open("Mo-Su 10:00-20:00")
    by_day = np.zeros(HOURS, bool)
    by_day[hours_of(range(7), 8, 20)] = True
    acts = hour_actions(o, end_hour=22, n_sites=1, site_open=by_day)
    st = (np.array([0]), np.array([0]))
    model = hour_model(demand, st, o, st, acts)
    assert model.uncovered == 3.0 and model.demand_total == 8.0
    sol = solve_mclp_kinds(model.matrix, acts.kind, (1, 0, 1), time_limit_s=5)
    assert [KINDS[k] for k in acts.kind[sol.chosen]] == ["extend"] and sol.objective == 3.0


@pytest.fixture
def area(engine, osm_path, sample_area) -> AreaInfo:  # type: ignore[no-untyped-def]
    """The demo sample area with the extract's host premises as candidate sites."""
    with engine.begin() as conn:
        cands, _ = filter_candidates(candidates_from_extract(osm_path), sample_area)
        store_candidates(conn, sample_area, cands, source="osm")
    return sample_area


def test_hours_recommendation_on_the_demo_data(engine, area, settings):
    rec = recommend_hours(engine, extend_to="22:00", max_extend=2, max_24h=1, max_sites=2, radius_m=500,
                          time_limit_s=30, settings=settings)
    acts = rec["actions"]
    kinds = [x["kind"] for x in acts]
    assert rec["problem"] == "hours" and 1 <= len(acts) <= 5
    assert kinds.count("extend") <= 2 and kinds.count("24h") <= 1 and kinds.count("site") <= 2
    assert [x["rank"] for x in acts] == list(range(1, len(acts) + 1))
    assert rec["objective"] == pytest.approx(sum(x["gain"] for x in acts), rel=1e-6)
    assert rec["bound"] >= rec["objective"] - 1e-6 and 0 <= rec["gap"] <= 1 and rec["method"]
    gains = [x["gain"] for x in acts]
    assert gains == sorted(gains, reverse=True)
    shares = [x["removed_share_after"] for x in acts]
    assert shares == sorted(shares) and 0 < shares[-1] <= 1
    assert acts[-1]["covered_share_after"] == pytest.approx(rec["covered_share_after"], abs=1e-6)
    assert rec["covered_share_after"] > rec["covered_share_before"]
    hours = rec["params"]["hours"]
    assert hours["site_hours"] == "24/7" and hours["caps"] == {"extend": 2, "24h": 1, "site": 2}
    removed = rec["demand_covered_after"] - rec["demand_covered_before"]
    assert removed == pytest.approx(rec["objective"], rel=1e-6)
    assert shares[-1] == pytest.approx(rec["objective"] / hours["demand_hours_uncovered_before"], abs=1e-6)
    # the coverage run by hour of the week, made apart, counts the same uncovered demand-hours before
    run = run_coverage(engine, radius_m=500, by_hour=True, settings=settings)
    assert hours["demand_hours_uncovered_before"] == pytest.approx(
        run["params"]["by_hour"]["uncovered_demand_hours"], rel=1e-9)
    for x in acts:
        assert x["hours_added"] > 0 and x["hours_rule"] and x["kind_zh"] and x["name"]
        if x["kind"] == "extend":  # to 22:00: nothing added from 22:00 on
            ends = re.findall(r"\d\d:\d\d-(\d\d):\d\d", x["hours_rule"])
            assert ends and all(int(e) <= 22 for e in ends), x["hours_rule"]
    assert [s["rank"] for s in rec["sites"]] == [x["rank"] for x in acts if x["kind"] == "site"]
    with engine.connect() as conn:
        again = recommendation_of(conn, rec["run_id"])
    assert again["actions"] == acts
    loaded = load_recommendation(engine, rec["run_id"])
    assert len(loaded.sites) == kinds.count("site") and len(loaded.gaps) == rec["remaining_gaps"]
    # only new sites, open by day: the same sites' gains shrink to the demand at those hours
    day = recommend_hours(engine, max_sites=2, site_hours="Mo-Su 08:00-20:00", radius_m=500, time_limit_s=30,
                          settings=settings)
    assert {x["kind"] for x in day["actions"]} == {"site"} and day["objective"] <= rec["bound"] + 1e-6
    assert all(x["hours_rule"] == "Mo-Su 08:00-20:00" for x in day["actions"])


def test_hours_recommendation_refuses_bad_options(engine, area, settings):
    cases = [({"max_extend": 0, "max_24h": 0, "max_sites": 0}, "至少.*at least one kind"),
             ({"max_extend": 1, "extend_to": "25:00"}, "extend to '25:00'"),
             ({"max_sites": 1, "site_hours": "whenever"}, "site hours"),
             ({"max_24h": -1}, "max_24h=-1"),
             ({"max_sites": 1, "mode": "air"}, "mode 'air'")]
    for kw, msg in cases:
        with pytest.raises(InvalidInput, match=msg):
            recommend_hours(engine, settings=settings, **kw)


def test_cli_recommend_hours(cli_env, osm_path, sample_extract, tmp_path):
    run_cli("area", "create", "wudaokou", "--bbox", "116.3084,39.9905,116.3320,40.0123", env=cli_env)
    files = sample_extract.write(tmp_path / "s")
    run_cli("stations", "import", str(files["stations"]), env=cli_env)
    run_cli("demand", "import", str(files["demand"]), env=cli_env)
    run_cli("candidates", "import", "--osm", str(osm_path), env=cli_env)
    proc = run_cli("recommend", "--hours", "--extend-to", "22:00", "--max-extend", "2", "--max-24h", "1",
                   "--max-sites", "1", "--radius", "500", "--json", env=cli_env)
    data = json.loads(proc.stdout)
    assert data["problem"] == "hours" and data["actions"]
    for key in ("objective", "bound", "gap", "optimal", "method", "covered_share_before", "covered_share_after"):
        assert key in data
    kinds = [x["kind"] for x in data["actions"]]
    assert kinds.count("extend") <= 2 and kinds.count("24h") <= 1 and kinds.count("site") <= 1
    table = run_cli("recommend", "--hours", "--max-24h", "2", "--radius", "500", env=cli_env).stdout
    assert "24小时营业" in table and "demand-hours removed" in table
    for args, msg in [(["--hours", "--extend-to", "late", "--max-extend", "1"], "extend to 'late'"),
                      (["--hours"], "at least one kind"),
                      (["--hours", "--k", "2"], "--hours"),
                      (["--max-extend", "2"], "--hours")]:
        bad = run_cli("recommend", *args, env=cli_env, check=False)
        assert bad.returncode != 0 and msg in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2, bad.stderr


def test_http_hours_recommendation(engine, area, settings, db_url, live_api):
    from yizhan.settings import Settings

    api = live_api(Settings(database_url=db_url, staff_key="staff-key", data_dir=settings.data_dir), timeout=120)
    staff = {"X-API-Key": "staff-key"}
    body = {"hours": True, "max_extend": 1, "max_24h": 1, "max_sites": 1, "radius_m": 500}
    assert api.post("/recommendations", json=body).status_code == 401
    r = api.post("/recommendations", json=body, headers=staff)
    assert r.status_code == 200, r.text
    rec = r.json()
    kinds = [x["kind"] for x in rec["actions"]]
    assert rec["problem"] == "hours" and all(kinds.count(k) <= 1 for k in ("extend", "24h", "site"))
    same = recommend_hours(engine, max_extend=1, max_24h=1, max_sites=1, radius_m=500, settings=settings)
    assert rec["objective"] == pytest.approx(same["objective"])
    assert [(x["kind"], x["id"]) for x in rec["actions"]] == [(x["kind"], x["id"]) for x in same["actions"]]
    assert api.get(f"/recommendations/{rec['run_id']}", headers=staff).json()["actions"] == rec["actions"]
    bad = api.post("/recommendations", json={**body, "extend_to": "25:00"}, headers=staff)
    assert bad.status_code in (400, 422) and "25:00" in bad.text
    both = api.post("/recommendations", json={**body, "k": 2}, headers=staff)
    assert both.status_code in (400, 422) and "hours" in both.text


def test_hours_recommendation_along_the_streets(engine, area, settings):
    """Along the streets a place is reached by no more stations than in a straight line (a street path is never
    shorter), so no more demand is covered before; the caps hold and the proof figures come with the answer."""
    kw = {"max_extend": 1, "max_24h": 1, "max_sites": 1, "radius_m": 500, "time_limit_s": 30}
    net = recommend_hours(engine, mode="network", settings=settings, **kw)
    line = recommend_hours(engine, settings=settings, **kw)
    assert net["mode"] == "network" and net["profile"] == "walk" and net["params"]["distance"].startswith("along")
    kinds = [x["kind"] for x in net["actions"]]
    assert all(kinds.count(k) <= 1 for k in ("extend", "24h", "site")) and net["objective"] > 0
    assert net["covered_share_before"] <= line["covered_share_before"] + 1e-9
    assert net["bound"] >= net["objective"] - 1e-6
