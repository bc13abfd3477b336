"""Site selection on a sparse coverage matrix: maximal covering (MCLP) and set covering to a target (LSCP).

The matrix holds only the demand that existing stations leave uncovered: row r is a demand cell of weight
``w_r`` (any unit: deliveries, riders), column j a candidate site, ``A[r, j] = 1`` when site j would cover
cell r (within the radius, in metres, straight or along the streets). Nothing here knows about coordinates.

Solvers, best first where time allows:

- greedy (exact incremental gains) followed by a best-improvement swap search (fast interchange);
- a Lagrangian relaxation (subgradient, O(nnz) a step): a proven upper bound for MCLP within seconds;
- the LP relaxation solved by HiGHS: a proven upper bound for MCLP (lower bound for LSCP);
- the mixed-integer model solved by HiGHS with the local-search answer as its starting point, within a
  time limit; it proves optimality or tightens the bound.

Every answer carries its objective, the best proven bound, the relative gap and which method produced it;
an answer is called optimal only when a bound proves it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import csc_matrix, csr_matrix

Progress = Callable[[str], None]
EPS = 1e-9
_BANNER_SHOWN = False


@dataclass
class CoverageMatrix:
    """Which candidate covers which still-uncovered demand cell.

    Attributes
    ----------
    matrix : csr_matrix, shape (n_rows, n_candidates)
        1 where the candidate covers the row's cell.
    weights : ndarray, shape (n_rows,)
        Demand weight of each row (> 0).
    rows : ndarray of int64, shape (n_rows,)
        Index of each row's cell among all cells of the run (to map answers back).
    """

    matrix: csr_matrix
    weights: np.ndarray
    rows: np.ndarray

    @property
    def n_candidates(self) -> int:
        return int(self.matrix.shape[1])

    @classmethod
    def from_pairs(cls, row_cell: np.ndarray, col: np.ndarray, n_candidates: int, cell_weights: np.ndarray,
                   coverable: np.ndarray) -> CoverageMatrix:
        """Build from (cell, candidate) pairs within reach; cells outside ``coverable`` (already covered or
        weightless) are dropped."""
        keep = coverable[row_cell]
        row_cell, col = row_cell[keep], col[keep]
        cells = np.unique(row_cell)
        local = np.searchsorted(cells, row_cell)
        mat = csr_matrix((np.ones(len(col), dtype=np.float64), (local, col)), shape=(len(cells), n_candidates))
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return cls(mat, np.asarray(cell_weights, dtype=np.float64)[cells], cells.astype(np.int64))


@dataclass
class Solution:
    """An answer: chosen candidates (indices) ranked by marginal gain, and how good it is proven to be.

    ``objective`` is the demand weight the chosen sites newly cover (MCLP) or the number of sites (LSCP);
    ``bound`` the best proven bound on the optimum (upper for MCLP, lower for LSCP); ``gap`` the relative
    distance between them (0 = proven optimal).
    """

    chosen: np.ndarray
    gains: np.ndarray
    objective: float
    bound: float
    gap: float
    method: str
    optimal: bool
    covered_weight: float
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


class _Reduced:
    """Identical rows merged (weights summed) and empty columns left out: a smaller, equivalent model."""

    def __init__(self, cm: CoverageMatrix) -> None:
        import pandas as pd

        a = cm.matrix.tocsr()
        a.sort_indices()
        keys = [a.indices[a.indptr[i]:a.indptr[i + 1]].tobytes() for i in range(a.shape[0])]
        inverse, uniques = pd.factorize(pd.Series(keys, dtype=object))
        _, first = np.unique(inverse, return_index=True)
        w = np.bincount(inverse, weights=cm.weights, minlength=len(uniques))
        rows = a[first]
        used = np.flatnonzero(np.diff(rows.tocsc().indptr) > 0)
        self.cols = used  # reduced column -> original column
        self.a = rows[:, used].tocsr()
        self.w = w
        self.at = self.a.T.tocsr()


def _gains(at: csr_matrix, w_open: np.ndarray) -> np.ndarray:
    gains: np.ndarray = at @ w_open
    return gains


def _order_by_gain(a: csr_matrix, at: csr_matrix, w: np.ndarray, chosen: np.ndarray, *,
                   trim: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The chosen columns re-ordered greedily by marginal gain, with those gains; with ``trim`` the columns that
    add nothing after the others are left out."""
    left = list(int(c) for c in chosen)
    open_w = w.copy()
    order, gains = [], []
    while left:
        g = at[left] @ open_w
        best = int(np.argmax(g))
        j = left.pop(best)
        order.append(j)
        gains.append(float(g[best]))
        open_w[at.indices[at.indptr[j]:at.indptr[j + 1]]] = 0.0
    order_a, gains_a = np.array(order, dtype=np.int64), np.array(gains)
    useful = gains_a > _tol(w) if trim else np.ones(len(order_a), dtype=bool)
    return order_a[useful], gains_a[useful]


def covered_by(a: csr_matrix, w: np.ndarray, chosen: np.ndarray) -> float:
    """Weight of the rows covered by at least one of ``chosen`` (column indices)."""
    sel = np.zeros(a.shape[1])
    sel[np.asarray(chosen, dtype=np.int64)] = 1.0
    return float(w[(a @ sel) > 0].sum())


def _tol(w: np.ndarray) -> float:
    """What counts as no gain at all: a tiny share of the total weight (weights may be any unit and scale)."""
    return 1e-9 * float(np.sum(w))


def greedy(a: csr_matrix, at: csr_matrix, w: np.ndarray, k: int, *, groups: np.ndarray | None = None,
           caps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` columns, each adding the most uncovered weight (ties: lowest index), in the order taken, and
    the weight each added; stops early when nothing more can be covered. ``a`` is rows x columns, ``at`` its
    transpose (CSR). With ``groups`` (the kind of each column, 0 … G-1) and ``caps`` (G,), at most ``caps[g]``
    columns of kind g are taken: a kind that is full is passed over."""
    tol = _tol(w)
    open_w = w.copy()
    gains = _gains(at, open_w)
    chosen: list[int] = []
    added: list[float] = []
    taken = np.zeros(a.shape[1], dtype=bool)
    used = np.zeros(len(caps) if caps is not None else 0, dtype=np.int64)
    while len(chosen) < k:
        blocked = taken if groups is None or caps is None else taken | (used >= caps)[groups]
        g = np.where(blocked, -1.0, gains)
        j = int(np.argmax(g)) if len(g) else -1
        if j < 0 or g[j] <= tol:
            break
        chosen.append(j)
        added.append(float(g[j]))
        taken[j] = True
        if groups is not None:
            used[groups[j]] += 1
        newly = at.indices[at.indptr[j]:at.indptr[j + 1]]
        newly = newly[open_w[newly] > 0]
        if len(newly):
            sub = a[newly]
            gains -= np.bincount(sub.indices, weights=np.repeat(open_w[newly], np.diff(sub.indptr)),
                                 minlength=a.shape[1])
            open_w[newly] = 0.0
    return np.array(chosen, dtype=np.int64), np.array(added)


def swap_search(a: csr_matrix, at: csr_matrix, w: np.ndarray, chosen: np.ndarray, *,
                deadline: float, groups: np.ndarray | None = None,
                caps: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Best-improvement interchange: swap one chosen column for one other while that covers more weight.

    Each round costs O(nnz): per row the number of chosen columns covering it; the loss of dropping i is
    the weight only i covers; the gain of adding j after dropping i is j's uncovered weight plus the weight j
    shares with i alone. With ``groups`` and ``caps`` (see ``greedy``) a column is swapped only for one of its
    own kind, and a column of a kind below its cap may also be added alone. Returns the improved set and the
    number of moves made."""
    if groups is not None and caps is not None:
        return _swap_search_kinds(a, at, w, chosen, deadline=deadline, groups=groups, caps=caps)
    m = a.shape[1]
    sel = np.zeros(m)
    sel[chosen] = 1.0
    swaps = 0
    total = float(w.sum())
    while time.monotonic() < deadline:
        cnt = a @ sel
        uncovered_w = np.where(cnt == 0, w, 0.0)
        gain = at @ uncovered_w
        unique = np.flatnonzero(cnt == 1)
        owner = np.rint(a[unique] @ (sel * np.arange(1, m + 1))).astype(np.int64) - 1
        loss = np.bincount(owner, weights=w[unique], minlength=m)
        # shared[j, i]: weight of rows covered by j whose only chosen cover is i
        b = csr_matrix((w[unique], (np.arange(len(unique)), owner)), shape=(len(unique), m))
        shared = (a[unique].T @ b).tocoo() if len(unique) else csr_matrix((m, m)).tocoo()
        is_in = sel > 0
        out_gain = np.where(is_in, -np.inf, gain)
        best_plain = int(np.argmax(out_gain))
        cand = []
        ins = np.flatnonzero(is_in)
        # plain: add the best outside column, drop the chosen one that loses least
        i_min = ins[int(np.argmin(loss[ins]))]
        cand.append((out_gain[best_plain] - loss[i_min], best_plain, i_min))
        if shared.nnz:
            ok = ~is_in[shared.row] & is_in[shared.col]
            val = gain[shared.row[ok]] + shared.data[ok] - loss[shared.col[ok]]
            if len(val):
                t = int(np.argmax(val))
                cand.append((val[t], int(shared.row[ok][t]), int(shared.col[ok][t])))
        delta, j, i = max(cand, key=lambda c: c[0])
        if not delta > 1e-9 * total:
            break
        sel[i], sel[j] = 0.0, 1.0
        swaps += 1
    return np.flatnonzero(sel > 0).astype(np.int64), swaps


def _swap_search_kinds(a: csr_matrix, at: csr_matrix, w: np.ndarray, chosen: np.ndarray, *, deadline: float,
                       groups: np.ndarray, caps: np.ndarray) -> tuple[np.ndarray, int]:
    """``swap_search`` under a cap per kind of column: moves are a swap within one kind, or an addition to a kind
    below its cap (best improvement first, same O(nnz) bookkeeping)."""
    m = a.shape[1]
    sel = np.zeros(m)
    sel[chosen] = 1.0
    moves = 0
    total = float(w.sum())
    while time.monotonic() < deadline:
        is_in = sel > 0
        cnt = a @ sel
        gain = at @ np.where(cnt == 0, w, 0.0)
        unique = np.flatnonzero(cnt == 1)
        owner = np.rint(a[unique] @ (sel * np.arange(1, m + 1))).astype(np.int64) - 1
        loss = np.bincount(owner, weights=w[unique], minlength=m)
        used = np.bincount(groups[is_in], minlength=len(caps))
        cand: list[tuple[float, int, int]] = []  # (delta, column in, column out or -1)
        out_gain = np.where(is_in, -np.inf, gain)
        roomy = (used < caps)[groups] & ~is_in
        if roomy.any():
            j = int(np.argmax(np.where(roomy, gain, -np.inf)))
            cand.append((float(gain[j]), j, -1))
        for g in np.unique(groups[is_in]):
            ins = np.flatnonzero(is_in & (groups == g))
            outs = np.where(groups == g, out_gain, -np.inf)
            j = int(np.argmax(outs))
            i = int(ins[np.argmin(loss[ins])])
            if np.isfinite(outs[j]):
                cand.append((float(outs[j] - loss[i]), j, i))
        if len(unique):
            b = csr_matrix((w[unique], (np.arange(len(unique)), owner)), shape=(len(unique), m))
            shared = (a[unique].T @ b).tocoo()
            ok = ~is_in[shared.row] & is_in[shared.col] & (groups[shared.row] == groups[shared.col])
            if ok.any():
                val = gain[shared.row[ok]] + shared.data[ok] - loss[shared.col[ok]]
                t = int(np.argmax(val))
                cand.append((float(val[t]), int(shared.row[ok][t]), int(shared.col[ok][t])))
        if not cand:
            break
        delta, j, i = max(cand, key=lambda c: c[0])
        if not delta > 1e-9 * total:
            break
        if i >= 0:
            sel[i] = 0.0
        sel[j] = 1.0
        moves += 1
    return np.flatnonzero(sel > 0).astype(np.int64), moves


def lagrangian_bound(a: csr_matrix, at: csr_matrix, w: np.ndarray, k: int, lower: float, *,
                     deadline: float, iterations: int = 3000, groups: np.ndarray | None = None,
                     caps: np.ndarray | None = None) -> float:
    """An upper bound on the best ``k``-column coverage by Lagrangian relaxation of ``y_r <= sum_j a_rj x_j``.

    For multipliers 0 <= lambda <= w, ``L(lambda) = sum_r max(0, w_r - lambda_r) + (sum of the k largest
    (A^T lambda)_j)`` bounds the optimum from above; subgradient steps (Polyak, towards ``lower``, a known
    objective) lower it. Each step costs O(nnz); stops at ``deadline`` or after ``iterations``. With ``groups``
    and ``caps`` (see ``greedy``) the k largest are taken per kind: the ``caps[g]`` largest of kind g."""
    m = a.shape[1]
    lam = 0.5 * w
    best = np.inf
    theta = 1.0
    stall = 0
    for _ in range(iterations):
        score = at @ lam
        if groups is not None and caps is not None:
            top = top_by_kind(score, groups, caps)
        else:
            top = np.argpartition(score, m - k)[m - k:] if k < m else np.arange(m)
        y = w > lam
        value = float((w - lam)[y].sum() + score[top].sum())
        if value < best:
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 20:  # no progress for a while: shorter steps
                theta, stall = theta / 2, 0
        sel = np.zeros(m)
        sel[top] = 1.0
        g = (a @ sel) - y  # d L / d lambda
        norm = float(g @ g)
        if norm == 0 or best - lower <= 1e-9 * max(best, 1.0) or time.monotonic() > deadline or theta < 1e-4:
            break
        lam = np.clip(lam - theta * (value - lower) / norm * g, 0.0, w)
    return best


def top_by_kind(score: np.ndarray, groups: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Indices of the ``caps[g]`` largest ``score`` among the columns of each kind g (``groups``: kind per column)."""
    picked: list[np.ndarray] = []
    for g, cap in enumerate(caps):
        idx = np.flatnonzero(groups == g)
        c = int(min(cap, len(idx)))
        if c > 0:
            picked.append(idx[np.argpartition(score[idx], len(idx) - c)[len(idx) - c:]])
    return np.concatenate(picked) if picked else np.empty(0, np.int64)


def _highs_model(a: csr_matrix, w: np.ndarray, *, k: int | None, required: float | None, integer: bool,
                 groups: np.ndarray | None = None, caps: np.ndarray | None = None) -> Any:
    """The MCLP (``k`` given: max covered weight with at most k columns) or LSCP (``required``: fewest columns
    covering at least that weight) model for HiGHS. Variables: x_j (columns) then y_r (rows, 0..1). For MCLP,
    ``groups`` and ``caps`` (see ``greedy``) replace the one budget row by one cardinality row per kind
    (``sum of x_j of kind g <= caps[g]``)."""
    import highspy

    n, m = a.shape
    if k is not None and (groups is None or caps is None):
        groups, caps = np.zeros(m, dtype=np.int64), np.array([k])
    n_budget = len(caps) if k is not None and caps is not None else 1
    # rows: y_r - sum_{j covers r} x_j <= 0, then the budgets (MCLP) or the coverage requirement (LSCP)
    coo = a.tocoo()
    r_idx = np.concatenate([coo.row, np.arange(n), n + groups if k is not None and groups is not None
                            else np.full(n, n)])
    c_idx = np.concatenate([coo.col, m + np.arange(n), np.arange(m) if k is not None else m + np.arange(n)])
    vals = np.concatenate([-np.ones(coo.nnz), np.ones(n), np.ones(m) if k is not None else w])
    mat = csc_matrix((vals, (r_idx, c_idx)), shape=(n + n_budget, m + n))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m + n, n + n_budget
    if k is not None:
        assert caps is not None
        lp.col_cost_ = np.concatenate([np.zeros(m), w])
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.row_lower_ = np.concatenate([np.full(n, -highspy.kHighsInf), np.full(n_budget, -highspy.kHighsInf)])
        lp.row_upper_ = np.concatenate([np.zeros(n), np.asarray(caps, dtype=np.float64)])
    else:
        assert required is not None, "the LSCP model needs the required weight"
        lp.col_cost_ = np.concatenate([np.ones(m), np.zeros(n)])
        lp.sense_ = highspy.ObjSense.kMinimize
        lp.row_lower_ = np.concatenate([np.full(n, -highspy.kHighsInf), [float(required)]])
        lp.row_upper_ = np.concatenate([np.zeros(n), [highspy.kHighsInf]])
    lp.col_lower_ = np.zeros(m + n)
    lp.col_upper_ = np.ones(m + n)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = mat.indptr.astype(np.int32)
    lp.a_matrix_.index_ = mat.indices.astype(np.int32)
    lp.a_matrix_.value_ = mat.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = m + n, n + n_budget
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * n
    h = _new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    return h


def _new_highs() -> Any:
    """A HiGHS instance; its banner (printed to stdout by the first one a process makes) is kept off stdout,
    which may carry a JSON answer."""
    import highspy

    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SHOWN = True
    return h


def _run(h: Any, seconds: float) -> str:
    """Solve with a time limit that holds: HiGHS' own limit, and a cancel from here when it overshoots (its
    root LP and presolve do not look at the clock often enough on large models)."""
    import highspy

    seconds = max(float(seconds), 0.01)
    h.setOptionValue("time_limit", seconds)
    h.HandleUserInterrupt = True
    thread = h.startSolve()
    thread.join(seconds + 1.0)
    if thread.is_alive():
        h.cancelSolve()
        thread.join()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        return "optimal"
    if status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        return "time limit"
    text: str = h.modelStatusToString(status)
    return text


def _branch_and_cut(h: Any, a: csr_matrix, chosen: np.ndarray, deadline: float,
                    details: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Run the mixed-integer model ``h`` from the columns ``chosen`` until ``deadline``; the x values found
    (one per column) and HiGHS' info (``mip_dual_bound``); status and node count go to ``details``."""
    import highspy

    start = np.zeros(a.shape[1] + a.shape[0])
    start[chosen] = 1.0
    start[a.shape[1]:] = (a @ start[:a.shape[1]] > 0).astype(float)
    sol = highspy.HighsSolution()
    sol.col_value = start
    sol.value_valid = True
    h.setSolution(sol)
    details["mip_status"] = _run(h, deadline - time.monotonic())
    info = h.getInfo()
    details["mip_nodes"] = int(info.mip_node_count)
    return np.asarray(h.getSolution().col_value[:a.shape[1]]), info


def _rel_gap(objective: float, bound: float) -> float:
    return max(0.0, abs(bound - objective)) / max(abs(bound), abs(objective), EPS)


def solve_mclp(cm: CoverageMatrix, k: int, *, time_limit_s: float = 60.0, exact: bool = True,
               mip_rel_gap: float = 1e-6, progress: Progress | None = None) -> Solution:
    """The ``k`` candidates covering the most still-uncovered weight.

    Greedy, a Lagrangian bound (subgradient), a swap search; then, with ``exact`` and time left, the
    mixed-integer model (HiGHS branch and cut) started from the local-search answer, else the LP relaxation
    (HiGHS) for a tighter bound. Phases stop as soon as a bound proves the answer. Returns the best answer found within
    ``time_limit_s`` seconds (the local search always finishes) with its proven bound and gap.
    """
    return _max_cover(cm, k, None, None, time_limit_s=time_limit_s, exact=exact, mip_rel_gap=mip_rel_gap,
                      progress=progress)


def solve_mclp_kinds(cm: CoverageMatrix, kinds: np.ndarray, caps: Sequence[int], *, time_limit_s: float = 60.0,
                     exact: bool = True, mip_rel_gap: float = 1e-6, progress: Progress | None = None) -> Solution:
    """The columns covering the most still-uncovered weight with at most ``caps[g]`` columns of each kind g.

    ``kinds`` (n_candidates,) gives each column's kind, 0 … len(caps)-1 (for instance: extend a station's hours,
    open it round the clock, open a new site). Same phases and proof figures as ``solve_mclp``: the greedy and
    the swap search respect the caps, the Lagrangian bound takes the largest scores per kind, and the HiGHS
    model has one cardinality row per kind. ``solve_mclp(cm, k)`` is this with one kind capped at k.
    """
    kinds = np.asarray(kinds, dtype=np.int64)
    cap_arr = np.asarray(caps, dtype=np.int64)
    if kinds.shape != (cm.n_candidates,):
        raise ValueError(f"kinds: expected one kind per column ({cm.n_candidates}), got shape {kinds.shape}")
    if len(cap_arr) == 0 or (cap_arr < 0).any() or (len(kinds) and not 0 <= kinds.min() <= kinds.max() < len(cap_arr)):
        raise ValueError("caps: expected one cap >= 0 per kind, and every kind 0 … len(caps)-1")
    return _max_cover(cm, int(cap_arr.sum()), kinds, cap_arr, time_limit_s=time_limit_s, exact=exact,
                      mip_rel_gap=mip_rel_gap, progress=progress)


def _max_cover(cm: CoverageMatrix, k: int, kinds: np.ndarray | None, caps: np.ndarray | None, *,
               time_limit_s: float, exact: bool, mip_rel_gap: float, progress: Progress | None) -> Solution:
    """``solve_mclp`` (``kinds`` None: one budget ``k``) or ``solve_mclp_kinds`` (``k`` the sum of ``caps``)."""
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    if k < 0:
        raise ValueError("k must be >= 0")
    red = _Reduced(cm)
    a, at, w = red.a, red.at, red.w
    g = kinds[red.cols] if kinds is not None else None  # kind of each reduced column
    details: dict[str, Any] = {"rows": int(cm.matrix.shape[0]), "candidates": cm.n_candidates,
                               "nonzeros": int(cm.matrix.nnz), "reduced_rows": int(a.shape[0]),
                               "useful_candidates": int(a.shape[1])}
    if caps is not None:
        details["caps"] = [int(c) for c in caps]
    if k == 0 or a.shape[1] == 0:
        return Solution(np.empty(0, np.int64), np.empty(0), 0.0, 0.0, 0.0, "trivial (nothing to choose)", True,
                        0.0, time.monotonic() - t0, details)
    if (k >= a.shape[1] if g is None or caps is None
            else bool((np.bincount(g, minlength=len(caps)) <= caps).all())):
        chosen = np.arange(a.shape[1])
        order, gains = _order_by_gain(a, at, w, chosen)
        obj = float(w.sum())
        return Solution(red.cols[order], gains, obj, obj, 0.0, "all useful candidates (k >= their number)", True,
                        obj, time.monotonic() - t0, details)
    phase = details["phase_seconds"] = {"reduce": round(time.monotonic() - t0, 3)}

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        phase[name] = round(now - since, 3)
        return now

    say(f"greedy over {a.shape[0]:,} demand groups x {a.shape[1]:,} candidates ({a.nnz:,} links)")
    t = time.monotonic()
    chosen, gains = greedy(a, at, w, k, groups=g, caps=caps)
    t = lap("greedy", t)
    details["greedy_objective"] = covered_by(a, w, chosen)
    if len(chosen) < k if g is None else details["greedy_objective"] >= float(w.sum()) - _tol(w):
        # every coverable weight is covered: optimal
        obj = float(gains.sum())
        return Solution(red.cols[chosen], gains, obj, obj, 0.0, "greedy (covers all coverable demand)", True, obj,
                        time.monotonic() - t0, details)
    if g is None or caps is None:
        bound = float(np.sort(_gains(at, w))[::-1][:k].sum())  # trivial bound: the k largest single-site gains
        bound_from = "sum of the k largest single-site gains"
    else:
        bound = float(_gains(at, w)[top_by_kind(_gains(at, w), g, caps)].sum())
        bound_from = "sum of the largest single-action gains of each kind, as many as its cap"
    say("Lagrangian bound")
    lag = lagrangian_bound(a, at, w, k, details["greedy_objective"], deadline=t0 + 0.2 * time_limit_s,
                           groups=g, caps=caps)
    if lag < bound:
        bound, bound_from = lag, "Lagrangian relaxation"
    t = lap("lagrangian", t)
    best = details["greedy_objective"]
    method = "greedy"
    if best < bound - mip_rel_gap * bound:
        say("swap search")
        chosen, swaps = swap_search(a, at, w, chosen, deadline=min(deadline, t0 + 0.5 * time_limit_s), groups=g,
                                    caps=caps)
        t = lap("swap", t)
        details["swaps"] = swaps
        best = covered_by(a, w, chosen)
        method = "greedy + swap" if swaps else "greedy (no improving swap)"
    if not exact and best < bound - mip_rel_gap * bound and time.monotonic() < deadline:
        # (branch and cut solves this relaxation at its root anyway)
        say("LP relaxation (HiGHS) for a bound")
        h = _highs_model(a, w, k=k, required=None, integer=False, groups=g, caps=caps)
        status = _run(h, deadline - time.monotonic())
        if status == "optimal":
            lp = float(h.getInfo().objective_function_value)
            if lp < bound:
                bound, bound_from = lp, "LP relaxation (HiGHS)"
        details["lp_status"] = status
        t = lap("lp", t)
    if exact and best < bound - mip_rel_gap * bound and time.monotonic() < deadline:
        say("mixed-integer model (HiGHS) from the swap answer")
        h = _highs_model(a, w, k=k, required=None, integer=True, groups=g, caps=caps)
        h.setOptionValue("mip_rel_gap", mip_rel_gap)
        x, info = _branch_and_cut(h, a, chosen, deadline, details)
        t = lap("mip", t)
        mip_chosen = np.flatnonzero(x > 0.5)
        if (len(mip_chosen) <= k if g is None or caps is None
                else bool((np.bincount(g[mip_chosen], minlength=len(caps)) <= caps).all())):
            value = covered_by(a, w, mip_chosen)
            if value > best + _tol(w):
                chosen, best, method = mip_chosen, value, "HiGHS branch and cut"
        dual = float(info.mip_dual_bound)
        if np.isfinite(dual) and dual < bound:
            bound, bound_from = dual, "HiGHS branch and cut (dual bound)"
    bound = max(bound, best)
    gap = _rel_gap(best, bound)
    optimal = gap <= max(mip_rel_gap, 1e-9)
    order, gains = _order_by_gain(a, at, w, chosen)
    details["bound_from"] = bound_from
    return Solution(red.cols[order], gains, best, bound, gap, method, optimal, best, time.monotonic() - t0, details)


def evaluate_sites(cm: CoverageMatrix, chosen: np.ndarray, *, time_limit_s: float = 30.0) -> Solution:
    """A given set of candidates (a planner's own list), ranked by marginal gain; ``bound`` is the LP bound of
    the best set of the same size, so ``gap`` says how far the list is from the best possible."""
    t0 = time.monotonic()
    chosen = np.unique(np.asarray(chosen, dtype=np.int64))
    a = cm.matrix.tocsr()
    at = a.T.tocsr()
    order, gains = _order_by_gain(a, at, cm.weights, chosen, trim=False)  # every given site is listed
    value = float(gains.sum())
    best = solve_mclp(cm, len(chosen), time_limit_s=time_limit_s, exact=False) if len(chosen) else None
    bound = best.bound if best is not None else 0.0
    return Solution(order, gains, value, max(bound, value), _rel_gap(value, max(bound, value)),
                    "evaluation of the given sites", False, value, time.monotonic() - t0,
                    {"best_found_same_k": best.objective if best is not None else 0.0,
                     "bound_from": best.details.get("bound_from") if best is not None else None})


def solve_lscp(cm: CoverageMatrix, required: float, *, time_limit_s: float = 60.0, exact: bool = True,
               progress: Progress | None = None) -> Solution:
    """The fewest candidates newly covering at least ``required`` weight (partial set covering).

    Greedy until the requirement is met, then redundant sites dropped; the LP relaxation gives a lower bound
    (rounded up); the mixed-integer model (HiGHS) proves or improves the count with time left. Raises
    ``ValueError`` when even all candidates together cover less than ``required``."""
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    red = _Reduced(cm)
    a, at, w = red.a, red.at, red.w
    reachable = float(w.sum())
    details: dict[str, Any] = {"rows": int(cm.matrix.shape[0]), "candidates": cm.n_candidates,
                               "reduced_rows": int(a.shape[0]), "useful_candidates": int(a.shape[1]),
                               "required_weight": required, "coverable_weight": reachable}
    tol = _tol(w) if len(w) else 0.0
    if required <= tol:
        return Solution(np.empty(0, np.int64), np.empty(0), 0.0, 0.0, 0.0, "trivial (already reached)", True, 0.0,
                        time.monotonic() - t0, details)
    if reachable < required - tol:
        raise ValueError(f"all {a.shape[1]} useful candidates together newly cover {reachable:.6g}, "
                         f"less than the {required:.6g} needed")
    say("greedy until the target is reached")
    chosen, gains = greedy(a, at, w, a.shape[1])  # taken in order of marginal gain
    need = int(np.searchsorted(np.cumsum(gains), required - tol) + 1)
    chosen = chosen[:need]
    # drop sites the others make redundant (largest index first, deterministic)
    for j in sorted(chosen.tolist(), reverse=True):
        rest = chosen[chosen != j]
        if covered_by(a, w, rest) >= required - tol:
            chosen = rest
    best = float(len(chosen))
    method = "greedy"
    bound, bound_from = 1.0, "at least one site"
    if best > bound and time.monotonic() < deadline:
        say("LP relaxation (HiGHS, interior point) for a bound")
        h = _highs_model(a, w, k=None, required=required, integer=False)
        h.setOptionValue("solver", "ipm")
        # at most a third of the time: branch and cut needs the rest (and solves this LP at its root anyway)
        if _run(h, (deadline - time.monotonic()) / 3) == "optimal":
            lp = float(h.getInfo().objective_function_value)
            bound = max(bound, float(np.ceil(lp - 1e-6 * max(1.0, lp))))
            bound_from = "LP relaxation (HiGHS), rounded up"
    if exact and best > bound and time.monotonic() < deadline:
        say("mixed-integer model (HiGHS) from the greedy answer")
        h = _highs_model(a, w, k=None, required=required, integer=True)
        x, info = _branch_and_cut(h, a, chosen, deadline, details)
        mip_chosen = np.flatnonzero(x > 0.5)
        if len(mip_chosen) and len(mip_chosen) < best and covered_by(a, w, mip_chosen) >= required - tol:
            chosen, best, method = mip_chosen, float(len(mip_chosen)), "HiGHS branch and cut"
        dual = float(info.mip_dual_bound)
        if np.isfinite(dual):
            proven = float(np.ceil(dual - 1e-6 * max(1.0, abs(dual))))
            if proven > bound:
                bound, bound_from = proven, "HiGHS branch and cut (dual bound), rounded up"
    bound = min(bound, best)
    order, gains = _order_by_gain(a, at, w, chosen)
    details["bound_from"] = bound_from
    gap = _rel_gap(best, bound)
    return Solution(red.cols[order], gains, best, bound, gap, method, gap == 0.0, float(gains.sum()),
                    time.monotonic() - t0, details)
