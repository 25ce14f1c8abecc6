"""Assignment of detections to tracks, and NMS.

Every function takes a cost matrix ``(M tracks, N detections)`` (lower is better) and a
boolean ``valid`` matrix of the pairs allowed to match, and returns ``(K, 2)`` int64
``(track, detection)`` pairs, every pair valid, each track and detection at most once.

* :func:`greedy_assignment`: best pair first over all valid pairs (ties: lower track index,
  then lower detection index), until no valid pair is left. numba, O(P log P) in the
  number P of valid pairs.
* :func:`hungarian_assignment`: the minimum-cost assignment among those with the most
  matches (scipy's ``linear_sum_assignment`` on the rows and columns that have a valid pair).
* :func:`detection_order_greedy_assignment`: CenterPoint's ``greedy_assignment``: detections
  in order, each takes the closest free valid track (ties: lowest track index).
"""
from __future__ import annotations

import numpy as np
from numba import njit
from scipy.optimize import linear_sum_assignment

__all__ = [
    "greedy_assignment",
    "hungarian_assignment",
    "detection_order_greedy_assignment",
    "assign",
    "nms",
    "component_labels",
]

_EMPTY = np.zeros((0, 2), dtype=np.int64)


def _check(cost: np.ndarray, valid: np.ndarray) -> None:
    if cost.ndim != 2 or valid.shape != cost.shape:
        raise ValueError(f"cost {cost.shape} and valid {valid.shape} must be the same (M, N) shape")


@njit(cache=True, nogil=True)
def _greedy_pairs(cost, valid):
    m, n = cost.shape
    count = 0
    for i in range(m):
        for j in range(n):
            if valid[i, j]:
                count += 1
    rows = np.empty(count, np.int64)
    cols = np.empty(count, np.int64)
    vals = np.empty(count, np.float64)
    k = 0
    for i in range(m):
        for j in range(n):
            if valid[i, j]:
                rows[k] = i
                cols[k] = j
                vals[k] = cost[i, j]
                k += 1
    order = np.argsort(vals, kind="mergesort")  # stable: ties keep (row, col) order
    row_used = np.zeros(m, np.bool_)
    col_used = np.zeros(n, np.bool_)
    out = np.empty((min(m, n), 2), np.int64)
    k = 0
    for t in range(count):
        p = order[t]
        i = rows[p]
        j = cols[p]
        if row_used[i] or col_used[j]:
            continue
        row_used[i] = True
        col_used[j] = True
        out[k, 0] = i
        out[k, 1] = j
        k += 1
        if k == out.shape[0]:
            break
    return out[:k]


def greedy_assignment(cost: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Best valid pair first; see the module docstring."""
    cost = np.asarray(cost, dtype=np.float64)
    valid = np.asarray(valid, dtype=np.bool_)
    _check(cost, valid)
    if cost.size == 0:
        return _EMPTY.copy()
    return _greedy_pairs(np.ascontiguousarray(cost), np.ascontiguousarray(valid))


@njit(cache=True, nogil=True)
def _hungarian_problem(cost, valid):
    """The solver's problem of :func:`hungarian_assignment`, in one pass instead of a dozen
    numpy calls on a small matrix: the rows and columns with a valid pair, whether no row or
    column has two (then every valid pair is matched: ``conflict`` False), and the cost
    sub-matrix of those rows and columns with every invalid pair set to ``big`` (more than any
    set of valid pairs costs, so the solver first maximises the number of valid matches, then
    minimises their cost), and its valid mask."""
    m, n = cost.shape
    per_row = np.zeros(m, np.int64)
    per_col = np.zeros(n, np.int64)
    lo = np.inf
    hi = -np.inf
    for i in range(m):
        for j in range(n):
            if valid[i, j]:
                per_row[i] += 1
                per_col[j] += 1
                lo = min(lo, cost[i, j])
                hi = max(hi, cost[i, j])
    rows = np.flatnonzero(per_row)
    cols = np.flatnonzero(per_col)
    conflict = len(rows) > 0 and (per_row.max() > 1 or per_col.max() > 1)
    sub = np.empty((len(rows), len(cols)), np.float64)
    sub_valid = np.empty((len(rows), len(cols)), np.bool_)
    if conflict:
        big = (hi - lo + 1.0) * (min(len(rows), len(cols)) + 1) + abs(hi)
        for a in range(len(rows)):
            for b in range(len(cols)):
                ok = valid[rows[a], cols[b]]
                sub_valid[a, b] = ok
                sub[a, b] = cost[rows[a], cols[b]] if ok else big
    return rows, cols, conflict, sub, sub_valid


def hungarian_assignment(cost: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Most matches, then least total cost, among valid pairs (scipy's solver)."""
    cost = np.asarray(cost, dtype=np.float64)
    valid = np.asarray(valid, dtype=np.bool_)
    _check(cost, valid)
    if cost.size == 0:
        return _EMPTY.copy()
    rows, cols, conflict, sub, sub_valid = _hungarian_problem(np.ascontiguousarray(cost), np.ascontiguousarray(valid))
    if len(rows) == 0:
        return _EMPTY.copy()
    if not conflict:  # every valid pair is matched
        r, c = np.nonzero(valid)
        return np.stack([r, c], axis=1).astype(np.int64)
    r, c = linear_sum_assignment(sub)
    keep = sub_valid[r, c]
    return np.stack([rows[r[keep]], cols[c[keep]]], axis=1).astype(np.int64)


@njit(cache=True, nogil=True)
def _detection_order_greedy(cost, valid):
    m, n = cost.shape
    used = np.zeros(m, np.bool_)
    out = np.empty((min(m, n), 2), np.int64)
    k = 0
    for j in range(n):
        best = -1
        best_cost = 0.0
        for i in range(m):
            if valid[i, j] and not used[i]:
                if best < 0 or cost[i, j] < best_cost:
                    best = i
                    best_cost = cost[i, j]
        if best >= 0:
            used[best] = True
            out[k, 0] = best
            out[k, 1] = j
            k += 1
    return out[:k]


def detection_order_greedy_assignment(cost: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """CenterPoint's greedy matching: detections (columns) in order each take the lowest-cost
    free valid track (the first on ties). Returns ``(track, detection)`` pairs in detection
    order."""
    cost = np.asarray(cost, dtype=np.float64)
    valid = np.asarray(valid, dtype=np.bool_)
    _check(cost, valid)
    if cost.size == 0:
        return _EMPTY.copy()
    # Any memory layout (numba compiles one version per layout): CenterPoint hands the
    # transpose of its (detections, tracks) matrix, which this walks down its contiguous
    # columns; a C-order copy would cost twice the matching itself.
    return _detection_order_greedy(cost, valid)


def assign(cost: np.ndarray, valid: np.ndarray, method: str) -> np.ndarray:
    """``method`` 'greedy' or 'hungarian' (tracks x detections)."""
    if method == "greedy":
        return greedy_assignment(cost, valid)
    if method == "hungarian":
        return hungarian_assignment(cost, valid)
    raise ValueError(f"assignment must be 'greedy' or 'hungarian', got {method!r}")


@njit(cache=True, nogil=True)
def _nms(order, overlap, classes, thresholds):
    n = order.shape[0]
    keep = np.ones(overlap.shape[0], np.bool_)
    for a in range(n):
        i = order[a]
        if not keep[i]:
            continue
        thr = thresholds[classes[i]]
        for b in range(a + 1, n):
            j = order[b]
            if keep[j] and classes[j] == classes[i] and overlap[i, j] > thr:
                keep[j] = False
    return keep


def nms(scores: np.ndarray, overlap: np.ndarray, classes: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Same-class greedy NMS: visiting boxes by descending score (stable), drop every later
    box of the same class whose ``overlap`` with a kept one exceeds the class's threshold.
    Returns a boolean keep mask in input order."""
    scores = np.asarray(scores)
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    if overlap.shape != (n, n):
        raise ValueError(f"overlap must be ({n}, {n}), got {overlap.shape}")
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    return _nms(order, np.ascontiguousarray(overlap), np.ascontiguousarray(classes, dtype=np.int64),
                np.ascontiguousarray(thresholds, dtype=np.float64))


@njit(cache=True, nogil=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True, nogil=True)
def _components(cand):
    m, n = cand.shape
    parent = np.arange(m + n)
    for i in range(m):
        for j in range(n):
            if cand[i, j]:
                a = _find(parent, i)
                b = _find(parent, m + j)
                if a != b:
                    if a < b:
                        parent[b] = a
                    else:
                        parent[a] = b
    labels = np.empty(m + n, np.int64)
    for k in range(m + n):
        labels[k] = _find(parent, k)
    return labels


def component_labels(candidates: np.ndarray):
    """Connected components of the bipartite candidate graph ``(M, N)``: integer labels
    ``(M,)`` for the rows and ``(N,)`` for the columns, equal exactly when a row and a column
    are linked through candidate pairs. Every candidate pair shares a label, and a row or
    column without candidates has a label of its own. Handed to
    ``pairwise_affinity`` as ``classes_a`` / ``classes_b``, they make the kernel compute only
    pairs inside a component (a superset of the candidates, usually a small one)."""
    c = np.ascontiguousarray(candidates, dtype=np.bool_)
    if c.ndim != 2:
        raise ValueError(f"candidates must be (M, N), got {c.shape}")
    labels = _components(c)
    return labels[: c.shape[0]], labels[c.shape[0]:]
