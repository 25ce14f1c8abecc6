"""The association network, its inputs, a training step, nsample_q validation and the
learned scorer inside the filter tracker — on small in-memory scenes (no dataset needed)."""
import warnings

import numpy as np
import pytest
import torch

from nutrack.model import AssociationNet, ModelConfig, association_loss, make_objects, pair_probabilities
from nutrack.model.features import (POINT_DIM, candidate_pairs, gather_object_points, pair_geometry,
                                    predict_boxes)
from nutrack.model.training_data import FrameRecord, batch_to_device, collate, frame_pairs


def _scene(rng, n_obj=12, n_frames=5, n_fp=2, dt=0.5):
    """Objects moving at constant velocity, noisy detections, points on the objects."""
    centre = rng.uniform(-30, 30, (n_obj, 2))
    vel = rng.uniform(-5, 5, (n_obj, 2))
    size = np.stack([rng.uniform(3.5, 5, n_obj), rng.uniform(1.6, 2.0, n_obj), rng.uniform(1.4, 1.8, n_obj)], 1)
    yaw = np.arctan2(vel[:, 1], vel[:, 0])
    cls = rng.integers(0, 2, n_obj)
    frames = []
    for t in range(n_frames):
        c = centre + vel * dt * t + rng.normal(0, 0.15, (n_obj, 2))
        boxes = np.concatenate([c, np.full((n_obj, 1), 1.0), size, yaw[:, None]], 1).astype(np.float32)
        fp = np.concatenate([rng.uniform(-30, 30, (n_fp, 2)), np.ones((n_fp, 1)), size[:n_fp],
                             rng.uniform(-3, 3, (n_fp, 1))], 1).astype(np.float32)
        all_boxes = np.concatenate([boxes, fp])
        v = np.concatenate([vel + rng.normal(0, 0.3, vel.shape), np.zeros((n_fp, 2))]).astype(np.float32)
        scores = np.concatenate([rng.uniform(0.5, 1, n_obj), rng.uniform(0.1, 0.4, n_fp)]).astype(np.float32)
        classes = np.concatenate([cls, cls[:n_fp]])
        ids = np.concatenate([np.arange(n_obj), -np.ones(n_fp, np.int64)])
        order = rng.permutation(len(ids))
        pts = []
        for b in all_boxes[order]:
            local = rng.uniform(-0.45, 0.45, (20, 3)) * b[3:6]
            cs, sn = np.cos(b[6]), np.sin(b[6])
            g = np.stack([cs * local[:, 0] - sn * local[:, 1] + b[0], sn * local[:, 0] + cs * local[:, 1] + b[1],
                          local[:, 2] + b[2], rng.uniform(0, 100, 20)], 1)
            pts.append(g)
        pts = np.concatenate(pts).astype(np.float32)
        obj = make_objects(all_boxes[order], v[order], scores[order], classes[order], np.eye(4), pts)
        frames.append(FrameRecord("s", t, f"tok{t}", t * dt, obj, ids[order]))
    return frames


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: torch's thread pool only costs time (a lot on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(0)
    return [_scene(rng), _scene(rng)]


def test_gather_points_local_frame():
    boxes = np.array([[10, 5, 1, 4, 2, 1.5, 0.7], [-3, 2, 0, 1, 1, 2, 0.0]], np.float32)
    pts = np.array([[10, 5, 1, 50], [-3, 2, 0, 10], [100, 100, 0, 0]], np.float32)
    out, mask = gather_object_points(pts, boxes, max_points=4)
    assert out.shape == (2, 4, POINT_DIM) and mask.sum() == 2
    assert mask[0, 0] and mask[1, 0]
    assert np.allclose(out[0, 0, :6], 0, atol=1e-5) and out[0, 0, 6] == pytest.approx(50 / 255)
    # subsampling keeps at most max_points, deterministically
    many = np.concatenate([np.tile([[10, 5, 1, 1]], (100, 1)), np.zeros((0, 4))]).astype(np.float32)
    o1, m1 = gather_object_points(many, boxes, 8)
    o2, m2 = gather_object_points(many, boxes, 8)
    assert m1[0].sum() == 8 and m1[1].sum() == 0 and np.array_equal(o1, o2)


def test_constant_velocity_and_gate():
    b = np.array([[0, 0, 0, 4, 2, 1.5, 0]], np.float32)
    p = predict_boxes(b, np.array([[2.0, -1.0]]), 0.5)
    assert p[0, :2].tolist() == [1.0, -0.5] and np.array_equal(p[0, 2:], b[0, 2:])
    dets = np.array([[1, -0.5, 0, 4, 2, 1.5, 0], [1, -0.5, 0, 4, 2, 1.5, 0], [30, 0, 0, 4, 2, 1.5, 0]], np.float32)
    ti, di = candidate_pairs(p, np.array([0]), dets, np.array([0, 1, 0]))
    assert ti.tolist() == [0] and di.tolist() == [0]  # other class and far pair gated out
    g = pair_geometry(p, np.array([[2.0, -1.0]]), np.array([0.5]), dets, np.zeros((3, 2)), ti, di, np.array([1]))
    assert g[0, 0] == pytest.approx(0.0, abs=1e-6)        # centre distance after motion compensation
    assert g[0, 1] == pytest.approx(1.0, abs=1e-5)        # giou_bev of identical boxes
    assert g[0, 2] == pytest.approx(1.0, abs=1e-5)        # iou_3d


def test_nsample_q_validation(scenes):
    pairs = frame_pairs(scenes, 1)
    for bad in (0, 1):
        with pytest.raises(ValueError, match="nsample_q"):
            collate(scenes, pairs[:2], bad, np.random.default_rng(0))
    b = collate(scenes, pairs[:2], 2, np.random.default_rng(0))
    assert len(b["query_obj"]) == 4


def test_batch_labels_follow_instances(scenes):
    pairs = frame_pairs(scenes, 2)
    b = collate(scenes, pairs, 8, np.random.default_rng(1))
    assert b["labels"].sum() > 0 and (b["labels"] == 0).sum() > 0
    # each query has at most one positive, and its target column points at it
    for q in range(len(b["query_obj"])):
        sel = b["pair_q"] == q
        assert b["labels"][sel].sum() <= 1
        if b["labels"][sel].sum():
            assert b["query_target"][q] == 1 + b["pair_col"][sel][b["labels"][sel] > 0][0]
        else:
            assert b["query_target"][q] == 0


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
def test_training_step_reduces_loss(scenes, normalization):
    torch.manual_seed(0)
    cfg = ModelConfig(normalization=normalization)
    model = AssociationNet(cfg)
    b = batch_to_device(collate(scenes, frame_pairs(scenes, 2), 8, np.random.default_rng(0)), "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_now():
        logits, nm = model(b)
        return association_loss(logits, nm, b, normalization)[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = float(loss_now().detach())
        for _ in range(30):
            opt.zero_grad()
            loss = loss_now()
            loss.backward()
            opt.step()
    assert float(loss_now().detach()) < 0.7 * first
    for p in model.parameters():  # parameters and gradients keep the same (contiguous) layout
        assert p.is_contiguous() and (p.grad is None or (p.grad.is_contiguous() and p.grad.stride() == p.stride()))


def test_no_point_ablation_ignores_points(scenes):
    torch.manual_seed(0)
    model = AssociationNet(ModelConfig(use_points=False)).eval()
    b = batch_to_device(collate(scenes, frame_pairs(scenes, 1)[:3], 4, np.random.default_rng(0)), "cpu")
    l1, _ = model(b)
    b["objects"]["points"] = torch.randn_like(b["objects"]["points"])
    l2, _ = model(b)
    assert torch.equal(l1, l2)


def test_softmax_probabilities_per_query():
    logits = torch.tensor([1.0, 2.0, -1.0, 0.5])
    nm = torch.tensor([0.0, 3.0])
    q = torch.tensor([0, 0, 1, 1])
    p = pair_probabilities(logits, nm, q, 2, "softmax")
    e = torch.exp(torch.tensor([0.0, 1.0, 2.0]))
    assert p[:2].tolist() == pytest.approx((e[1:] / e.sum()).tolist(), rel=1e-6)
    assert float(p[2:].sum()) < 1.0
    assert torch.equal(pair_probabilities(logits, None, q, 2, "sigmoid"), torch.sigmoid(logits))


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
def test_learned_scorer_in_filter_tracker(scenes, normalization):
    """The scorer fits the tracker's Scorer contract and associates a clean scene."""
    from nutrack.data import Detections
    from nutrack.model import LearnedScorer
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import learned_params
    from nutrack.tracking.scorer import FrameContext

    torch.manual_seed(0)
    model = AssociationNet(ModelConfig(normalization=normalization))
    b = batch_to_device(collate(scenes, frame_pairs(scenes, 2), 16, np.random.default_rng(0)), "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        logits, nm = model(b)
        association_loss(logits, nm, b, normalization)[0].backward()
        opt.step()
    scorer = LearnedScorer(model.eval(), threshold=0.1)
    tracker = FilterTracker(learned_params(), scorer=scorer)
    tracker.reset()
    frames = scenes[0]
    max_id = 0
    for f in frames:
        o = f.objects
        det = Detections(o.boxes, o.velocities, o.scores, o.classes)
        ctx = FrameContext(timestamp=f.timestamp, time_lag=0.5, index=f.index, sample_token=f.sample_token)
        out = tracker.step(det, f.timestamp, ctx)
        assert len(out) > 0
        max_id = max(max_id, int(out.track_ids.max()))
    # 12 objects and 2 false positives a frame over 5 frames: without association there would
    # be ~60 track ids; with it, the objects keep theirs (false positives may start a few)
    assert max_id <= 12 + 2 * len(frames)
    m = scorer(tracker.view(), Detections(o.boxes, o.velocities, o.scores, o.classes),
               FrameContext(timestamp=frames[-1].timestamp + 0.5, time_lag=0.5, index=99))
    assert m.shape == (tracker.num_tracks, len(o.boxes)) and m.dtype == np.float32
    finite = m[np.isfinite(m)]
    assert finite.size and finite.min() >= 0 and finite.max() <= 1
