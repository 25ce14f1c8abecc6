"""Assignment solvers, NMS, candidate components and the gated affinity."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import nutrack.ops
from nutrack.tracking import detection_order_greedy_assignment, greedy_assignment, hungarian_assignment, nms
from nutrack.tracking.association import assign, component_labels
from nutrack.tracking.scorer import gated_affinity
from tests._helpers import requires_cuda


def _check_matching(pairs, valid):
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 2
    assert len(set(pairs[:, 0].tolist())) == len(pairs) and len(set(pairs[:, 1].tolist())) == len(pairs)
    assert all(valid[i, j] for i, j in pairs)


def _brute_force(cost, valid):
    """Most matches, then least cost, over every matching."""
    m, n = cost.shape
    best = (0, 0.0)
    for k in range(min(m, n), 0, -1):
        found = None
        for rows in itertools.combinations(range(m), k):
            for cols in itertools.permutations(range(n), k):
                if all(valid[r, c] for r, c in zip(rows, cols)):
                    total = sum(cost[r, c] for r, c in zip(rows, cols))
                    if found is None or total < found:
                        found = total
        if found is not None:
            return k, found
    return best


@pytest.mark.parametrize("seed", range(30))
def test_hungarian_is_optimal(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(0, 5, 2)
    cost = rng.uniform(-1, 1, (m, n))
    valid = rng.random((m, n)) < 0.5
    pairs = hungarian_assignment(cost, valid)
    _check_matching(pairs, valid)
    k, total = _brute_force(cost, valid)
    assert len(pairs) == k
    assert sum(cost[i, j] for i, j in pairs) == pytest.approx(total)


def _greedy_reference(cost, valid):
    cand = sorted((cost[i, j], i, j) for i in range(cost.shape[0]) for j in range(cost.shape[1]) if valid[i, j])
    used_r, used_c, out = set(), set(), []
    for _, i, j in cand:
        if i not in used_r and j not in used_c:
            used_r.add(i)
            used_c.add(j)
            out.append((i, j))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_greedy_best_pair_first(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(0, 8, 2)
    cost = rng.integers(0, 5, (m, n)).astype(float)  # many ties
    valid = rng.random((m, n)) < 0.6
    pairs = greedy_assignment(cost, valid)
    _check_matching(pairs, valid)
    assert [tuple(p) for p in pairs.tolist()] == _greedy_reference(cost, valid)
    assert np.array_equal(assign(cost, valid, "greedy"), pairs)


@pytest.mark.parametrize("seed", range(20))
def test_detection_order_greedy_is_centerpoints(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 8, 2)
    # CenterPoint's greedy_assignment, on its (N detections, M tracks) matrix
    cost_dt = rng.integers(0, 4, (n, m)).astype(float)
    valid_dt = rng.random((n, m)) < 0.6
    ref = []
    used = set()
    big = np.where(valid_dt, cost_dt, 1e18)
    for i in range(n):
        row = big[i].copy()
        row[list(used)] = 1e18
        if m and row.min() < 1e16:
            j = int(row.argmin())
            used.add(j)
            ref.append((j, i))  # (track, detection)
    got = detection_order_greedy_assignment(cost_dt.T, valid_dt.T)
    assert [tuple(p) for p in got.tolist()] == ref


ALL_ASSIGNMENTS = [greedy_assignment, hungarian_assignment, detection_order_greedy_assignment,
                   lambda c, v: assign(c, v, "greedy"), lambda c, v: assign(c, v, "hungarian")]


@pytest.mark.parametrize("solve", ALL_ASSIGNMENTS)
def test_every_assignment_takes_tracks_x_detections_and_returns_track_detection_pairs(solve):
    # 2 tracks x 4 detections, one valid pair each, no conflict: every solver must match them
    cost = np.arange(8, dtype=float).reshape(2, 4)
    valid = np.zeros((2, 4), bool)
    valid[0, 3] = valid[1, 1] = True
    got = sorted(tuple(p) for p in solve(cost, valid).tolist())
    assert got == [(0, 3), (1, 1)]


def test_assign_errors_and_empty():
    with pytest.raises(ValueError, match="greedy"):
        assign(np.zeros((1, 1)), np.ones((1, 1), bool), "auction")
    with pytest.raises(ValueError, match="shape"):
        greedy_assignment(np.zeros((2, 2)), np.ones((2, 3), bool))
    for f in (greedy_assignment, hungarian_assignment, detection_order_greedy_assignment):
        assert f(np.zeros((0, 3)), np.zeros((0, 3), bool)).shape == (0, 2)
        assert f(np.zeros((3, 2)), np.zeros((3, 2), bool)).shape == (0, 2)


def test_nms_same_class_only():
    scores = np.array([0.5, 0.9, 0.8, 0.7])
    classes = np.array([0, 0, 1, 0])
    overlap = np.array([[1, .6, .9, .1], [.6, 1, .9, .4], [.9, .9, 1, .0], [.1, .4, .0, 1]])
    keep = nms(scores, overlap, classes, np.array([0.5, 0.5]))
    assert keep.tolist() == [False, True, True, True]
    keep = nms(scores, overlap, classes, np.array([0.7, 0.5]))
    assert keep.tolist() == [True, True, True, True]
    assert nms(np.zeros(0), np.zeros((0, 0)), np.zeros(0, int), np.ones(2)).shape == (0,)


@pytest.mark.parametrize("seed", range(10))
def test_component_labels_match_connected_components(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(0, 12, 2)
    cand = rng.random((m, n)) < 0.15
    la, lb = component_labels(cand)
    assert la.shape == (m,) and lb.shape == (n,)
    g = np.zeros((m + n, m + n), bool)
    g[:m, m:] = cand
    _, ref = connected_components(csr_matrix(g), directed=False)
    lab = np.concatenate([la, lb])
    for a in range(m + n):
        for b in range(m + n):
            assert (lab[a] == lab[b]) == (ref[a] == ref[b])


@pytest.mark.parametrize("metric", nutrack.ops.AFFINITY_METRICS)
def test_gated_affinity_equals_dense_on_candidates(metric):
    rng = np.random.default_rng(1)
    def boxes(k):
        b = np.zeros((k, 7), np.float32)
        b[:, :2] = rng.uniform(-20, 20, (k, 2))
        b[:, 2] = rng.uniform(0, 1, k)
        b[:, 3:6] = rng.uniform(0.5, 5, (k, 3))
        b[:, 6] = rng.uniform(-3, 3, k)
        return b
    a, b = boxes(30), boxes(25)
    ca, cb = rng.integers(0, 3, 30), rng.integers(0, 3, 25)
    dist = np.asarray(nutrack.ops.pairwise_affinity(a, b, "center_distance", ca, cb))
    cand = dist < 8.0
    assert cand.any() and not cand.all()
    dense = np.asarray(nutrack.ops.pairwise_affinity(a, b, metric, ca, cb))
    got = gated_affinity(a, b, metric, cand)
    assert np.array_equal(got[cand], dense[cand].astype(np.float64))
    bad = np.inf if metric == "center_distance" else -np.inf
    assert (got[~cand] == bad).all()
    assert gated_affinity(a, b, metric, np.zeros_like(cand)).shape == cand.shape


@requires_cuda
@pytest.mark.cuda
def test_cuda_backend_matches_host():
    from nutrack.tracking.scorer import affinity

    rng = np.random.default_rng(0)
    b = np.zeros((40, 7), np.float32)
    b[:, :2] = rng.uniform(-10, 10, (40, 2))
    b[:, 3:6] = rng.uniform(0.5, 4, (40, 3))
    b[:, 6] = rng.uniform(-3, 3, 40)
    c = rng.integers(0, 3, 40)
    for metric in ("center_distance", "giou_3d"):
        host = affinity(b, b[::-1].copy(), metric, c, c[::-1].copy(), backend="cpu")
        dev = affinity(b, b[::-1].copy(), metric, c, c[::-1].copy(), backend="cuda")
        assert isinstance(dev, np.ndarray) and np.allclose(host, dev, rtol=1e-6, atol=1e-6)
