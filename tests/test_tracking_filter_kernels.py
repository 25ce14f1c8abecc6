"""The filter tracker's numba bookkeeping kernels (nutrack/tracking/_filter_kernels.py, issue 12,
item 2) against the numpy code they replace, which lives on here as their twins: each kernel
must give the twin's result bit for bit, and the tracker its output with every kernel swapped
for its twin."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nutrack.ops import pairwise_affinity
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.tracking import _filter_kernels as kernels
from nutrack.tracking import motion
from nutrack.tracking.association import hungarian_assignment
from nutrack.tracking.filter import FilterTracker

from tests.test_tracking_filter_frames import _boxes, _scene


# -- the numpy twins (the tracker's code before the kernels) ---------------------------------
def _boxes_valid_twin(boxes):
    try:
        validate_boxes(boxes)
    except ValueError:
        return False
    return True


def _gate_twin(track_frames, track_cls, det_frames, det_cls, gate_distance, track_boxes, det_boxes):
    dist = pairwise_affinity(track_boxes, det_boxes, "center_distance", track_cls, det_cls)
    return dist <= gate_distance[track_cls][:, None]


def _passing_pairs_twin(aff, candidates, rows, cols, threshold, is_distance):
    aff = aff[rows][:, cols]
    candidates = candidates[rows][:, cols]
    gate = threshold[:, None]
    with np.errstate(invalid="ignore"):
        if is_distance:
            valid = candidates & (aff < gate)
            cost = aff
        else:
            valid = candidates & (aff > gate)
            cost = -aff
    r, c = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    return r, c, np.where(valid, cost, 0.0)[np.ix_(r, c)], valid[np.ix_(r, c)]


def _hungarian_twin(cost, valid):
    per_row = valid.sum(axis=1)
    rows = np.flatnonzero(per_row)
    if len(rows) == 0:
        return np.zeros((0, 2), np.int64)
    per_col = valid.sum(axis=0)
    if per_row.max() == 1 and per_col.max() == 1:
        r, c = np.nonzero(valid)
        return np.stack([r, c], axis=1).astype(np.int64)
    cols = np.flatnonzero(per_col)
    sub_valid = valid[np.ix_(rows, cols)]
    sub = cost[np.ix_(rows, cols)]
    finite = sub[sub_valid]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    big = (span + 1.0) * (min(sub.shape) + 1) + abs(float(finite.max()))
    sub = np.where(sub_valid, sub, big)
    r, c = linear_sum_assignment(sub)
    keep = sub_valid[r, c]
    return np.stack([rows[r[keep]], cols[c[keep]]], axis=1).astype(np.int64)


def _measurements_twin(boxes, velocities, rows):
    return motion.measurements(boxes[rows], velocities[rows])


def _smooth_matched_twin(matched, det_rows, boxes, scores, z, size, score, hits, tsu, confirmed, cls, min_hits,
                         a, score_smoothing):
    z[matched] = (1.0 - a) * z[matched] + a * boxes[det_rows, 2]
    size[matched] = (1.0 - a) * size[matched] + a * boxes[det_rows, 3:6]
    s_det = scores[det_rows].astype(np.float64)
    if score_smoothing > 0.0:
        s_det = (1.0 - score_smoothing) * s_det + score_smoothing * score[matched]
    score[matched] = s_det
    hits[matched] += 1
    tsu[matched] = 0
    confirmed[matched] |= hits[matched] >= min_hits[cls[matched]]


def _life_cycle_rows_twin(confirmed, tsu, cls, max_age, tentative_max_age, track_det, det_used, high, sel_idx,
                          sel_score, sel_cls, birth_score):
    alive = np.flatnonzero(np.where(confirmed, tsu <= max_age[cls], tsu <= tentative_max_age))
    born = np.flatnonzero(~det_used & high)
    born = sel_idx[born[sel_score[born] >= birth_score[sel_cls[born]]]]
    tm = track_det[alive]
    det_of_alive = np.full(len(tm), -1, np.int64)
    det_of_alive[tm >= 0] = sel_idx[tm[tm >= 0]]
    return alive, born, np.concatenate([det_of_alive, born])


def _keep_rows_twin(keep, *columns):
    for col in columns:
        col[:len(keep)] = col[keep]


def _fill_new_tracks_twin(start, first_id, det_rows, boxes, scores, classes, min_hits, first_frames_of,
                          ids, cls, yaw, z, size, score, hits, age, tsu, confirmed):
    k = len(det_rows)
    new = slice(start, start + k)
    c = classes[det_rows]
    ids[new] = first_id + np.arange(k, dtype=np.int64)
    cls[new] = c
    yaw[new] = boxes[det_rows, 6].astype(np.float64)
    z[new] = boxes[det_rows, 2].astype(np.float64)
    size[new] = boxes[det_rows, 3:6].astype(np.float64)
    score[new] = scores[det_rows].astype(np.float64)
    hits[new], age[new], tsu[new] = 1, 0, 0
    confirmed[new] = (min_hits[c] <= 1) | first_frames_of[c]


def _output_rows_twin(tsu, confirmed, cls, max_coast, show_tentative):
    updated = tsu == 0
    coasting = confirmed & (tsu > 0) & (tsu <= max_coast[cls])
    return np.flatnonzero((updated | coasting) if show_tentative else ((updated & confirmed) | coasting))


TWINS = {"boxes_valid": _boxes_valid_twin, "passing_pairs": _passing_pairs_twin,
         "measurements_of": _measurements_twin, "smooth_matched": _smooth_matched_twin,
         "life_cycle_rows": _life_cycle_rows_twin, "keep_rows": _keep_rows_twin,
         "fill_new_tracks": _fill_new_tracks_twin, "output_rows": _output_rows_twin}


# -- each kernel against its twin --------------------------------------------------------------
def test_boxes_valid_matches_validate_boxes():
    rng = np.random.default_rng(0)
    good = _boxes(rng, 30)
    assert kernels.boxes_valid(good) and _boxes_valid_twin(good)
    assert kernels.boxes_valid(good[:0])
    bad_values = [(0, np.nan), (1, np.inf), (6, -np.inf), (3, 0.0), (4, -1.0), (5, 1e-10), (3, 2e9),
                  (0, 1.5e9), (2, -1.5e9), (5, np.float32(1e9)), (0, np.float32(-1e9))]
    for col, value in bad_values:
        b = good.copy()
        b[7, col] = value
        assert kernels.boxes_valid(b) == _boxes_valid_twin(b), (col, value)


@pytest.mark.parametrize("seed", range(3))
def test_gate_candidates_matches_center_distance_op(seed):
    rng = np.random.default_rng(seed)
    tb, db = _boxes(rng, 25), _boxes(rng, 40)
    db[:5, :2] = tb[:5, :2] + np.float32(2.0)  # distances right at a gate
    tc, dc = rng.integers(0, 7, 25), rng.integers(0, 7, 40)
    dc[:5] = tc[:5]
    gate = np.array([3.5, 3.5, 6.0, 5.0, 2.0, 6.0, np.sqrt(8.0)], np.float32)
    tf, df = box_frames(tb), box_frames(db)
    got = kernels.gate_candidates(tf, tc, df, dc, gate)
    np.testing.assert_array_equal(got, _gate_twin(tf, tc, df, dc, gate, tb, db))
    assert got.any() and not got.all()


@pytest.mark.parametrize("is_distance", [False, True])
def test_passing_pairs_matches_numpy(is_distance):
    rng = np.random.default_rng(5)
    aff = rng.uniform(-1, 1, (12, 15))
    aff[rng.random(aff.shape) < 0.1] = np.nan  # a scorer's ruled-out pairs
    aff[0, :] = 0.25  # ties with the threshold
    aff[1, 1] = -np.inf
    cand = rng.random(aff.shape) < 0.6
    thr = np.full(12, 0.25)
    thr[5:] = rng.uniform(-0.5, 0.5, 7)
    aff[:, 13] = np.nan  # a column without a valid pair
    for rows, cols in [(np.arange(12), np.arange(15)), (np.array([0, 2, 3, 9]), np.array([1, 4, 14])),
                       (np.array([0, 1]), np.zeros(0, np.int64))]:
        for matrix in (aff, aff.astype(np.float32)):
            got = kernels.passing_pairs(matrix, cand, rows, cols, thr[rows], is_distance)
            want = _passing_pairs_twin(matrix.astype(np.float64), cand, rows, cols, thr[rows], is_distance)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()


def test_hungarian_assignment_matches_numpy_form():
    rng = np.random.default_rng(9)
    for trial in range(300):
        m, n = rng.integers(1, 12, 2)
        cost = np.round(rng.normal(0, 1, (m, n)), 1 if trial % 2 else 6)  # ties on odd trials
        valid = rng.random((m, n)) < rng.uniform(0.05, 0.9)
        np.testing.assert_array_equal(hungarian_assignment(cost, valid), _hungarian_twin(cost, valid))


def _track_columns(rng, m):
    """Random track-table columns (ids, cls, x, P, yaw, z, size, score, hits, age, tsu, confirmed)."""
    return [np.arange(m, dtype=np.int64) + 7, rng.integers(0, 7, m), rng.normal(0, 5, (m, 6)),
            rng.normal(0, 1, (m, 6, 6)), rng.uniform(-3, 3, m), rng.uniform(0, 2, m), rng.uniform(0.5, 5, (m, 3)),
            rng.random(m), rng.integers(1, 5, m), rng.integers(0, 9, m), rng.integers(0, 8, m), rng.random(m) < 0.5]


def _same(got, want):
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()


def test_measurements_of_matches_numpy():
    rng = np.random.default_rng(1)
    boxes, vel = _boxes(rng, 20), rng.normal(0, 3, (20, 2)).astype(np.float32)
    rows = np.array([3, 0, 19, 3])
    _same([kernels.measurements_of(boxes, vel, rows)], [_measurements_twin(boxes, vel, rows)])


@pytest.mark.parametrize("score_smoothing", [0.0, 0.3])
def test_smooth_matched_matches_numpy(score_smoothing):
    rng = np.random.default_rng(2)
    boxes, scores = _boxes(rng, 30), rng.random(30).astype(np.float32)
    cols = _track_columns(rng, 25)
    matched, det_rows = np.array([0, 4, 5, 11, 24]), np.array([29, 3, 0, 7, 8])
    min_hits = np.array([1, 2, 3, 4, 5, 2, 3])
    for a in (0.3, 1.0, 0.1234567):
        got = [c.copy() for c in cols]
        want = [c.copy() for c in cols]
        kernels.smooth_matched(matched, det_rows, boxes, scores, *got[5:9], got[10], got[11], got[1], min_hits,
                               a, score_smoothing)
        _smooth_matched_twin(matched, det_rows, boxes, scores, *want[5:9], want[10], want[11], want[1], min_hits,
                             a, score_smoothing)
        _same(got, want)


def test_life_cycle_rows_matches_numpy():
    rng = np.random.default_rng(4)
    for _ in range(50):
        m, n = rng.integers(0, 20, 2)
        confirmed, tsu, cls = rng.random(m) < 0.6, rng.integers(0, 8, m), rng.integers(0, 7, m)
        track_det = np.where(rng.random(m) < 0.5, rng.integers(0, max(n, 1), m), -1) if n else np.full(m, -1)
        sel_idx = np.sort(rng.choice(3 * n + 1, n, replace=False))
        args = (confirmed, tsu, cls, rng.integers(0, 7, 7), int(rng.integers(0, 3)), track_det,
                rng.random(n) < 0.5, rng.random(n) < 0.7, sel_idx, rng.random(n), rng.integers(0, 7, n),
                rng.uniform(0, 1, 7))
        _same(kernels.life_cycle_rows(*args), _life_cycle_rows_twin(*args))


def test_keep_rows_and_fill_new_tracks_match_numpy():
    rng = np.random.default_rng(6)
    boxes, scores, classes = _boxes(rng, 30), rng.random(30).astype(np.float32), rng.integers(0, 7, 30)
    min_hits, first = np.array([1, 2, 3, 1, 2, 3, 1]), rng.random(7) < 0.5
    for keep in (np.array([0, 2, 3, 9, 10, 18]), np.arange(19), np.zeros(0, np.int64), np.array([18])):
        got = _track_columns(rng, 22)  # room for the 3 born after any 19 kept
        want = [c.copy() for c in got]
        kernels.keep_rows(keep, *got)
        _keep_rows_twin(keep, *want)
        _same(got, want)
        born = np.array([4, 29, 0])
        start = len(keep)
        columns = lambda c: (c[0], c[1], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11])
        kernels.fill_new_tracks(start, 40, born, boxes, scores, classes, min_hits, first, *columns(got))
        _fill_new_tracks_twin(start, 40, born, boxes, scores, classes, min_hits, first, *columns(want))
        _same(got, want)


@pytest.mark.parametrize("show_tentative", [False, True])
def test_output_rows_matches_numpy(show_tentative):
    rng = np.random.default_rng(8)
    tsu, confirmed, cls = rng.integers(0, 6, 40), rng.random(40) < 0.5, rng.integers(0, 7, 40)
    max_coast = np.array([0, 1, 2, 3, 4, 3, 3])
    _same([kernels.output_rows(tsu, confirmed, cls, max_coast, show_tentative)],
          [_output_rows_twin(tsu, confirmed, cls, max_coast, show_tentative)])


# -- the tracker with every kernel swapped for its twin ------------------------------------------
@pytest.mark.parametrize("overrides", [{}, {"assignment": "greedy"}, {"metric2": "bev_iou"},
                                       {"min_hits": (2,) * 7, "tentative_max_age": 1, "tentative_score_factor": 0.0,
                                        "score_smoothing": 0.4, "output_filtered": False}])
def test_tracker_output_same_with_numpy_twins(monkeypatch, overrides):
    frames = _scene(np.random.default_rng(21), n_frames=20)

    def run():
        tracker = FilterTracker(**overrides)
        return [tracker.step(d, 0.5 * i) for i, d in enumerate(frames)]

    fast = run()
    for name, twin in TWINS.items():
        monkeypatch.setattr(kernels, name, twin)
    real_gate = kernels.gate_candidates
    monkeypatch.setattr(FilterTracker, "_frames_of", lambda self, d, t: (None, None))  # gate through the op
    monkeypatch.setattr(kernels, "gate_candidates", None)
    monkeypatch.setattr("nutrack.tracking.association.hungarian_assignment", _hungarian_twin)
    slow = run()
    assert real_gate is not None and sum(len(t) for t in fast) > 100
    for f, s in zip(fast, slow):
        for name in ("boxes", "velocities", "scores", "classes", "track_ids"):
            a, b = getattr(f, name), getattr(s, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name


def test_track_table_keeps_rows_and_grows():
    from nutrack.tracking.filter import TrackTable

    table = TrackTable(capacity=2)
    start = table.keep_and_grow(np.zeros(0, np.int64), 2)
    table.ids[start:] = [10, 11]
    table.x[start:, 0] = [1.0, 2.0]
    start = table.keep_and_grow(np.array([1]), 4)  # past the capacity: the buffers grow
    assert start == 1 and len(table) == 5 and all(len(getattr(table, c)) == 5 for c in TrackTable.COLUMNS)
    table.ids[start:] = [20, 21, 22, 23]
    table.x[start:, 0] = [3.0, 4.0, 5.0, 6.0]
    table.keep_and_grow(np.array([0, 2, 4]), 0)
    np.testing.assert_array_equal(table.ids, [11, 21, 23])
    np.testing.assert_array_equal(table.x[:, 0], [2.0, 4.0, 6.0])
