"""Ground-truth assignment with the devkit's rule, on hand-built cases and against motmetrics."""

from __future__ import annotations

import numpy as np
import pytest

from nutrack.data import Detections, assign_frame, assign_gt
from nutrack.data.classes import CLASS_TO_ID
from nutrack.data.nuscenes_io import GroundTruth

CAR, PED, TRUCK = CLASS_TO_ID["car"], CLASS_TO_ID["pedestrian"], CLASS_TO_ID["truck"]


def xy(*pts):
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def test_simple_match_and_unmatched():
    out = assign_gt(xy((0, 0), (10, 0), (50, 50)), [CAR, CAR, CAR], xy((0.5, 0), (10, 1.5)), [CAR, CAR])
    assert out.tolist() == [0, 1, -1]


def test_exactly_two_metres_is_not_a_match():
    # the devkit drops distances >= dist_th_tp (2 m)
    gt = xy((100.0, 200.0))
    assert assign_gt(xy((102.0, 200.0)), [CAR], gt, [CAR]).tolist() == [-1]
    assert assign_gt(xy((100.0, 198.0)), [CAR], gt, [CAR]).tolist() == [-1]
    assert assign_gt(xy((101.999, 200.0)), [CAR], gt, [CAR]).tolist() == [0]
    # a 3-4-5 triangle (exactly 2.0 in floating point when the subtraction is exact)
    assert assign_gt(xy((1.2, 1.6)), [CAR], xy((0.0, 0.0)), [CAR]).tolist() == [-1]
    assert assign_gt(xy((1.2, 1.59)), [CAR], xy((0.0, 0.0)), [CAR]).tolist() == [0]
    assert assign_gt(xy((0, 0)), [CAR], xy((0, 0)), [CAR], max_dist=1e-9).tolist() == [0]


def test_class_mismatch_never_matches():
    assert assign_gt(xy((0, 0)), [PED], xy((0, 0)), [CAR]).tolist() == [-1]
    # the same-class box further away wins over the other-class box on top
    out = assign_gt(xy((0, 0)), [TRUCK], xy((0, 0), (1.5, 0)), [CAR, TRUCK])
    assert out.tolist() == [1]


def test_ties_go_to_the_higher_score_then_the_earlier_detection():
    gt = xy((0, 0))
    dets = xy((1, 0), (-1, 0), (0, 1))
    assert assign_gt(dets, [CAR] * 3, gt, [CAR], det_scores=[0.2, 0.9, 0.5]).tolist() == [-1, 0, -1]
    assert assign_gt(dets, [CAR] * 3, gt, [CAR], det_scores=[0.5, 0.5, 0.5]).tolist() == [0, -1, -1]
    assert assign_gt(dets, [CAR] * 3, gt, [CAR]).tolist() == [0, -1, -1]
    # one detection equidistant from two ground-truth boxes: the earlier box
    assert assign_gt(xy((0, 0)), [CAR], xy((1, 0), (-1, 0)), [CAR, CAR]).tolist() == [0]
    # a symmetric 2x2 tie: both matched, deterministically
    a = assign_gt(xy((0, 0), (2, 0)), [CAR, CAR], xy((1, 0.5), (1, -0.5)), [CAR, CAR], det_scores=[0.1, 0.9])
    b = assign_gt(xy((0, 0), (2, 0)), [CAR, CAR], xy((1, 0.5), (1, -0.5)), [CAR, CAR], det_scores=[0.1, 0.9])
    assert sorted(a.tolist()) == [0, 1] and a.tolist() == b.tolist()


def test_one_to_one_maximises_matches_then_minimises_distance():
    # det 0 is closest to gt 0 but also within reach of gt 1; det 1 can only reach gt 0.
    # Greedy would give det 0 -> gt 0 and leave det 1 unmatched; the devkit's solver matches both.
    dets = xy((0, 0), (-1.5, 0))
    gts = xy((0.1, 0), (1.5, 0))
    assert assign_gt(dets, [CAR, CAR], gts, [CAR, CAR]).tolist() == [1, 0]
    # with equal cardinality, the smaller total distance
    dets = xy((0, 0), (1, 0))
    gts = xy((0.9, 0), (0.1, 0))
    assert assign_gt(dets, [CAR, CAR], gts, [CAR, CAR]).tolist() == [1, 0]


def test_shapes_and_errors():
    assert assign_gt(np.zeros((0, 7)), [], xy((0, 0)), [CAR]).tolist() == []
    assert assign_gt(xy((0, 0)), [CAR], np.zeros((0, 7)), np.zeros(0, int)).tolist() == [-1]
    boxes = np.zeros((2, 7), np.float32)
    boxes[1, 0] = 5
    assert assign_gt(boxes, [CAR, CAR], boxes[::-1], [CAR, CAR]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="det_classes"):
        assign_gt(xy((0, 0)), [CAR, CAR], xy((0, 0)), [CAR])
    with pytest.raises(ValueError, match="gt_boxes"):
        assign_gt(xy((0, 0)), [CAR], np.zeros(3), [CAR])
    with pytest.raises(ValueError, match="finite"):
        assign_gt(xy((np.nan, 0)), [CAR], xy((0, 0)), [CAR])
    with pytest.raises(ValueError, match="det_scores"):
        assign_gt(xy((0, 0)), [CAR], xy((0, 0)), [CAR], det_scores=[1, 2])


def test_agrees_with_motmetrics_first_frame():
    """On random frames without ties, the pairs equal motmetrics' (the devkit's solver)."""
    from motmetrics.mot import MOTAccumulator

    rng = np.random.default_rng(0)
    for trial in range(40):
        n, m = rng.integers(0, 12, size=2)
        dets = rng.uniform(0, 8, size=(n, 2))
        gts = rng.uniform(0, 8, size=(m, 2))
        dc = rng.integers(0, 2, n)
        gc = rng.integers(0, 2, m)
        ours = assign_gt(dets, dc, gts, gc)
        expected = np.full(n, -1)
        for c in (0, 1):
            gi, di = np.flatnonzero(gc == c), np.flatnonzero(dc == c)
            if len(gi) == 0 or len(di) == 0:
                continue
            d = np.hypot(gts[gi, None, 0] - dets[None, di, 0], gts[gi, None, 1] - dets[None, di, 1])
            d[d >= 2.0] = np.nan
            acc = MOTAccumulator(auto_id=True)
            acc.update(gi.tolist(), (1000 + di).tolist(), d)
            ev = acc.mot_events
            for _, row in ev[ev.Type == "MATCH"].iterrows():
                expected[int(row.HId) - 1000] = int(row.OId)
        assert ours.tolist() == expected.tolist(), trial


def test_assign_frame_labels_instance_tokens():
    det = Detections(np.array([[0, 0, 1, 4, 2, 1.5, 0], [30, 0, 1, 4, 2, 1.5, 0], [5.5, 0, 1, 1, 1, 1, 0]], np.float32),
                     np.zeros((3, 2)), [0.9, 0.8, 0.3], [CAR, CAR, PED])
    gt = GroundTruth(boxes=np.array([[0.5, 0.5, 1, 4, 2, 1.5, 0], [5, 0, 1, 1, 1, 1, 0]], np.float32),
                     velocities=np.zeros((2, 2), np.float32), classes=np.array([CAR, PED]),
                     instance_tokens=np.array(["inst-car", "inst-ped"]), annotation_tokens=np.array(["a1", "a2"]),
                     num_pts=np.array([10, 3]))
    a = assign_frame(det, gt)
    assert a.gt_index.tolist() == [0, -1, 1]
    assert a.instance_tokens.tolist() == ["inst-car", "", "inst-ped"]
    assert a.matched.tolist() == [True, False, True]
    np.testing.assert_allclose(a.distance[[0, 2]], [np.hypot(0.5, 0.5), 0.5], rtol=1e-6)
    assert np.isnan(a.distance[1])


def test_assign_frame_on_synthetic_data(synthetic_dataset, synthetic_data):
    from nutrack.data import load_detections

    split = synthetic_dataset.train_split
    dets = load_detections(synthetic_dataset.detections[split], synthetic_data, split)
    matched = total = 0
    for scene in synthetic_data.scenes(split, dets):
        for fr in scene:
            gt = synthetic_data.ground_truth(fr.sample_token)
            a = assign_frame(fr.detections, gt)
            ok = a.matched
            assert len(set(a.gt_index[ok].tolist())) == ok.sum()  # one-to-one
            assert np.all(a.distance[ok] < 2.0)
            assert np.all(gt.classes[a.gt_index[ok]] == fr.detections.classes[ok])
            matched += ok.sum()
            total += len(a.gt_index)
    assert 0.3 < matched / total < 0.95  # true positives and false positives both present
