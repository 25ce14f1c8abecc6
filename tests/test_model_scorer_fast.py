"""The learned tracker's fast path (issue 11, item 4) held to the path it replaced, bit for bit.

The reference is the code before the change, kept verbatim in tests/_learned_reference.py:
``reference_gather_object_points`` (points_in_boxes_all, lexsort, numpy features),
``reference_pair_geometry`` (one pairwise_affinity per metric on the unique boxes) and
``ReferenceLearnedScorer`` (per-track tuples in a dict, a stack of feature rows, per-row keys).
Every comparison of the network's inputs is on the float bits (``view(np.uint32)``), not within a
tolerance; the whole tracker's tracks too, its score matrices within float32 rounding (see
``test_learned_tracker_is_the_reference``).
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests._learned_reference import (ReferenceLearnedScorer, reference_gather_object_points, reference_object_geometry,
                                      reference_pair_geometry)
from nutrack.data import Detections
from nutrack.model import AssociationNet, LearnedScorer, ModelConfig
from nutrack.model.features import (PointIndex, candidate_pairs, count_object_points, gather_object_points,
                                    object_geometry, pair_geometry, predict_boxes)
from nutrack.scoring import FrameContext


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a.view(np.uint32 if a.dtype == np.float32 else np.uint64),
                              b.view(np.uint32 if b.dtype == np.float32 else np.uint64))
    return np.array_equal(a, b)


def _cloud_and_boxes(rng, n_boxes=40, per_box=60, clutter=3000, columns=5):
    """Boxes of mixed sizes and headings (a few overlapping, a few far from every point), points
    inside them (some on the faces of the enlarged box, some boxes with more than 32 points),
    uniform clutter, and the intensity in column 3."""
    size = np.stack([rng.uniform(0.5, 12, n_boxes), rng.uniform(0.5, 3, n_boxes), rng.uniform(1, 4, n_boxes)], 1)
    boxes = np.concatenate([rng.uniform(-50, 50, (n_boxes, 2)), rng.uniform(-1, 2, (n_boxes, 1)), size,
                            rng.uniform(-4, 4, (n_boxes, 1))], 1).astype(np.float32)
    boxes[1, :2] = boxes[0, :2] + 0.5  # overlapping
    boxes[2, :2] = 500.0  # no point near it
    boxes[3, 6] = np.float32(np.pi / 2)  # a quarter turn (snapped cos/sin)
    pts = []
    for b in boxes:
        k = rng.integers(0, per_box)
        local = rng.uniform(-0.6, 0.6, (k, 3)) * b[3:6]
        local[: k // 4, 0] = np.sign(local[: k // 4, 0] + 1e-9) * (b[3] * 1.15 + 0.2) / 2  # on the enlarged faces
        c, s = np.cos(b[6]), np.sin(b[6])
        pts.append(np.stack([c * local[:, 0] - s * local[:, 1] + b[0], s * local[:, 0] + c * local[:, 1] + b[1],
                             local[:, 2] + b[2]], 1))
    pts.append(rng.uniform([-60, -60, -2], [60, 60, 4], (clutter, 3)))
    xyz = np.concatenate(pts)
    cloud = np.zeros((len(xyz), columns), np.float32)
    cloud[:, :3] = xyz
    if columns > 3:
        cloud[:, 3] = rng.uniform(-10, 300, len(xyz))  # clipped to 0-1 after / 255
    return cloud[rng.permutation(len(cloud))], boxes


@pytest.mark.parametrize("columns", [3, 4, 5])
@pytest.mark.parametrize("max_points", [1, 4, 32, 100])
@pytest.mark.parametrize("per_box", [60, 600])  # 600: boxes past the kernel's sort limit (a scan of flags)
def test_gather_object_points_is_the_reference(columns, max_points, per_box):
    rng = np.random.default_rng(columns * 100 + max_points + per_box)
    for _ in range(3):
        cloud, boxes = _cloud_and_boxes(rng, per_box=per_box, columns=columns)
        want = reference_gather_object_points(cloud, boxes, max_points)
        index = PointIndex(cloud)
        for got in (gather_object_points(cloud, boxes, max_points), gather_object_points(index, boxes, max_points),
                    gather_object_points(index, boxes[::-1].copy(), max_points)[0][::-1]):
            if isinstance(got, tuple):
                assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
            else:
                assert _bits_equal(got, want[0])
        # some box is full (with more points than slots) unless the slots outnumber every box's points
        assert want[1].any() and ((want[1].sum(1) == max_points).any() or (max_points > 32 and per_box == 60))


@pytest.mark.parametrize("max_points", [0, 1, 4, 32, 100])
def test_count_object_points_is_the_reference_mask(max_points):
    """The confidence head's point counts: the number of slots the reference fills per box."""
    rng = np.random.default_rng(max_points)
    for per_box in (60, 600):
        cloud, boxes = _cloud_and_boxes(rng, per_box=per_box)
        want = reference_gather_object_points(cloud, boxes, max_points)[1].sum(axis=1)
        for pts in (cloud, PointIndex(cloud)):
            got = count_object_points(pts, boxes, max_points)
            assert got.dtype == np.int64 and np.array_equal(got, want)
    # not trivial: some box is full; with more slots, some is not
    assert (want == max_points).any() if max_points else not want.any()
    assert max_points <= 4 or (want < max_points).any()
    for pts, b in ((None, boxes), (cloud[:0], boxes), (cloud, boxes[:0])):
        assert np.array_equal(count_object_points(pts, b, max_points), np.zeros(len(b), np.int64))


def test_object_geometry_is_the_reference():
    """The numba pass gives numpy's float32 values: poses far from the origin and turned, no pose,
    NaN velocities, sizes under the log's floor, float32 and float64 inputs, no boxes."""
    rng = np.random.default_rng(5)
    for trial in range(40):
        n = int(rng.integers(0, 60))
        yaw = rng.uniform(-np.pi, np.pi)
        pose = np.eye(4)
        pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        pose[:3, 3] = rng.uniform(-2000, 2000, 3)
        boxes = np.concatenate([pose[:2, 3] + rng.uniform(-60, 60, (n, 2)), rng.uniform(-2, 3, (n, 1)),
                                rng.uniform(0.001, 15, (n, 3)), rng.uniform(-4, 4, (n, 1))], 1)
        vel = rng.normal(0, 5, (n, 2))
        vel[rng.random((n, 2)) < 0.05] = np.nan
        scores, counts = rng.random(n), rng.integers(0, 33, n)
        dtype = np.float32 if trial % 2 else np.float64
        for p in (pose, None):
            args = (boxes.astype(dtype), vel.astype(dtype), scores.astype(dtype), p, counts)
            got, want = object_geometry(*args), reference_object_geometry(*args)
            # equal values; the sign of a zero may differ (a NaN velocity's 0 turned by the pose)
            assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)


def test_gather_object_points_edge_cases():
    rng = np.random.default_rng(1)
    cloud, boxes = _cloud_and_boxes(rng)
    for pts, b in ((None, boxes), (cloud[:0], boxes), (cloud, boxes[:0]), (cloud[:1], boxes)):
        got, want = gather_object_points(pts, b, 32), reference_gather_object_points(pts, b, 32)
        assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
    bad = cloud.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gather_object_points(bad, boxes, 32)
    with pytest.raises(ValueError, match="sizes"):
        gather_object_points(cloud, np.array([[0, 0, 0, -1, 1, 1, 0]], np.float32), 32)


def test_pair_geometry_with_classes_is_the_reference():
    rng = np.random.default_rng(2)
    _, tracks = _cloud_and_boxes(rng, n_boxes=30)
    _, dets = _cloud_and_boxes(rng, n_boxes=35)
    dets[:20] = tracks[:20] + rng.normal(0, 0.5, (20, 7)).astype(np.float32) * [1, 1, 0.1, 0.1, 0.1, 0.1, 0.2]
    tc, dc = rng.integers(0, 3, 30), rng.integers(0, 3, 35)
    dc[:20] = tc[:20]
    tv, dv = rng.normal(0, 3, (30, 2)).astype(np.float32), rng.normal(0, 3, (35, 2)).astype(np.float32)
    tv[0, 0] = np.nan
    dt, tsu = rng.uniform(0.5, 2, 30), rng.integers(1, 4, 30).astype(np.float64)
    pred = predict_boxes(tracks, tv, dt)
    ti, di = candidate_pairs(pred, tc, dets, dc, (50.0,) * 7)
    want = reference_pair_geometry(pred, tv, dt, dets, dv, ti, di, time_since_update=tsu)
    assert _bits_equal(pair_geometry(pred, tv, dt, dets, dv, ti, di, time_since_update=tsu), want)
    got = pair_geometry(pred, tv, dt, dets, dv, ti, di, time_since_update=tsu, track_classes=tc, det_classes=dc)
    assert _bits_equal(got, want) and len(ti) > 50
    with pytest.raises(ValueError, match="one class"):
        pair_geometry(pred, tv, dt, dets, dv, np.array([0]), np.array([0]), track_classes=tc, det_classes=dc + 1)
    # the caller's frames of the boxes (as the tracker computes them once a frame)
    from nutrack.ops._boxes import box_frames

    frames = (box_frames(pred), box_frames(dets))
    got = pair_geometry(pred, tv, dt, dets, dv, ti, di, time_since_update=tsu, track_classes=tc, det_classes=dc,
                        frames=frames)
    assert _bits_equal(got, want)


def test_pair_geometry_is_the_reference_on_many_pairs():
    """The numba pass's log, cos, sin and hypot give numpy's float32 columns on 40,000 pairs
    (headings all round, sizes from 1 cm, NaN and infinite velocities)."""
    rng = np.random.default_rng(7)
    _, tracks = _cloud_and_boxes(rng, n_boxes=200)
    _, dets = _cloud_and_boxes(rng, n_boxes=200)
    tracks[:10, 3:6] = 0.011  # near the log's 1 cm floor
    tv, dv = rng.normal(0, 8, (200, 2)).astype(np.float32), rng.normal(0, 8, (200, 2)).astype(np.float32)
    dv[:5, 1] = np.nan
    dv[5, 0], tv[3, 1] = np.inf, -np.inf
    dt, tsu = rng.uniform(0.5, 2, 200), rng.integers(1, 9, 200).astype(np.float64)
    ti, di = (a.ravel() for a in np.meshgrid(np.arange(200), np.arange(200), indexing="ij"))
    with np.errstate(over="ignore", invalid="ignore"):  # the infinite velocities' differences
        want = reference_pair_geometry(tracks, tv, dt, dets, dv, ti, di, time_since_update=tsu)
    got = pair_geometry(tracks, tv, dt, dets, dv, ti, di, time_since_update=tsu)
    assert _bits_equal(got, want)


def _reference_candidate_pairs(pred, tc, dets, dc, gates):
    """candidate_pairs as it was: the numpy distance matrix and np.nonzero."""
    a, b = np.asarray(pred, np.float64), np.asarray(dets, np.float64)
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    ok = (tc[:, None] == dc[None, :]) & (d < np.asarray(gates, np.float64)[tc][:, None])
    return np.nonzero(ok)


def test_candidate_pairs_is_the_numpy_reference():
    rng = np.random.default_rng(5)
    for trial in range(30):
        m, n = rng.integers(0, 40, 2)
        tb = rng.uniform(-30, 30, (m, 7)).astype(np.float32)
        db = rng.uniform(-30, 30, (n, 7)).astype(np.float32)
        tc, dc = rng.integers(0, 7, m), rng.integers(0, 7, n)
        gates = tuple(rng.uniform(1, 20, 7))
        if m and n:  # pairs at the gate itself (distance == gate exactly: out), NaN centres
            db[0, :2] = tb[0, :2] + np.float32([gates[tc[0]], 0.0])
            dc[0] = tc[0]
            tb[-1, 0] = np.nan
        ti, di = candidate_pairs(tb, tc, db, dc, gates)
        wi, wj = _reference_candidate_pairs(tb, tc, db, dc, gates)
        assert np.array_equal(ti, wi) and np.array_equal(di, wj) and ti.dtype == np.int64
    with pytest.raises(IndexError):
        candidate_pairs(tb, np.full(m, 9), db, dc, gates)


def test_network_mlps_are_nn_sequential():
    """The MLPs' functional forward gives nn.Sequential's outputs and gradients, bit for bit."""
    torch.manual_seed(0)
    net = AssociationNet(ModelConfig())
    ref = copy.deepcopy(net)
    for mod in ref.modules():
        if isinstance(mod, nn.Sequential):
            mod.__class__ = nn.Sequential
    n = 37
    obj = {"geom": torch.randn(n, 14), "classes": torch.randint(0, 7, (n,)), "points": torch.randn(n, 32, 7),
           "mask": torch.rand(n, 32) > 0.4}
    geo, i, j = torch.randn(90, 12), torch.randint(0, n, (90,)), torch.randint(0, n, (90,))
    outs = []
    for m in (net, ref):
        f = m.encode(obj)
        out = (f, m.pair_logits(f[i], f[j], geo), m.nomatch_logits(f))
        sum(o.sum() for o in out).backward()
        outs.append([o.detach() for o in out] + [p.grad for p in m.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def _frames(rng, n_frames=12, n_obj=25, n_fp=8, dt=0.5):
    """A scene: objects at constant velocity, noisy detections (some missed, low-score false
    positives, occasional duplicates), and a cloud with points on the objects and clutter."""
    cls = rng.integers(0, 4, n_obj)
    pos, vel = rng.uniform(-40, 40, (n_obj, 2)), rng.uniform(-6, 6, (n_obj, 2))
    size = np.stack([rng.uniform(3.5, 5, n_obj), rng.uniform(1.6, 2.0, n_obj), rng.uniform(1.4, 1.8, n_obj)], 1)
    out = []
    for t in range(n_frames):
        seen = rng.random(n_obj) > 0.15
        c = pos[seen] + vel[seen] * dt * t + rng.normal(0, 0.2, (seen.sum(), 2))
        yaw = np.arctan2(vel[seen, 1], vel[seen, 0]) + rng.normal(0, 0.05, seen.sum())
        b = np.concatenate([c, np.ones((seen.sum(), 1)), size[seen], yaw[:, None]], 1)
        fc = rng.integers(0, 4, n_fp)
        fp = np.concatenate([rng.uniform(-40, 40, (n_fp, 2)), np.ones((n_fp, 1)), size[:n_fp],
                             rng.uniform(-3, 3, (n_fp, 1))], 1)
        boxes = np.concatenate([b, fp]).astype(np.float32)
        v = np.concatenate([vel[seen] + rng.normal(0, 0.3, (seen.sum(), 2)), rng.normal(0, 1, (n_fp, 2))])
        scores = np.concatenate([rng.uniform(0.06, 1, seen.sum()), rng.uniform(0.05, 0.4, n_fp)])  # some low: stage 2
        classes = np.concatenate([cls[seen], fc])
        cloud, _ = _cloud_and_boxes(rng, n_boxes=4, clutter=2000)
        near = []
        for bx in boxes:
            local = rng.uniform(-0.5, 0.5, (rng.integers(0, 50), 3)) * bx[3:6]
            cs, sn = np.cos(bx[6]), np.sin(bx[6])
            near.append(np.stack([cs * local[:, 0] - sn * local[:, 1] + bx[0], sn * local[:, 0] + cs * local[:, 1]
                                  + bx[1], local[:, 2] + bx[2], rng.uniform(0, 255, len(local)),
                                  np.zeros(len(local))], 1))
        cloud = np.concatenate([cloud] + near).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        det = Detections(boxes[order], v[order].astype(np.float32), scores[order].astype(np.float32), classes[order])
        out.append((det, 1e9 + t * dt, cloud))
    return out


def _run(scorer, scenes):
    """Track the scenes with the learned tracker; every output array and score matrix."""
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import learned_params

    seen, matrices = [], []

    class Recording:
        kind, threshold = scorer.kind, scorer.threshold

        def __call__(self, *a, **k):
            m = scorer(*a, **k)
            matrices.append(m.copy())
            return m

        def reset(self):
            scorer.reset()

        def observe(self, *a):
            scorer.observe(*a)

    tracker = FilterTracker(learned_params(), scorer=Recording())
    for frames in scenes:
        tracker.reset()
        for i, (det, ts, cloud) in enumerate(frames):
            ctx = FrameContext(timestamp=ts, time_lag=0.5 if i else 0.0, index=i, sample_token=f"s{i}",
                               points=lambda c=cloud: c)
            out = tracker.step(det, ts, ctx)
            seen += [out.boxes, out.velocities, out.scores, out.classes, np.asarray(out.track_ids)]
    return seen, matrices


@pytest.mark.parametrize("engine", ["torch", "numba"])
@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
@pytest.mark.parametrize("use_points", [True, False])
def test_learned_tracker_is_the_reference(normalization, use_points, engine):
    """The whole learned tracker, new scorer vs the reference (an untrained network with a low
    threshold, so that it matches, misses and re-identifies): the same tracks, bit for bit, and
    the same score matrices within float32 rounding. Not bit for bit: the network now encodes
    a frame's objects in one batch (the detections stage 2 matched wait for the next frame's),
    and the BLAS rounds a row differently in another batch (in the last bit, on a few rows);
    the numba engine sums in another order too. Its inputs are held to the bits above."""
    rng = np.random.default_rng(3)
    # the third scene's tracks coast through two empty frames after their birth: their features
    # wait (unencoded) for the first frame with something to score
    gaps = _frames(rng, n_obj=5, n_fp=0)
    gaps[1:3] = [(Detections.empty(), ts, cloud) for _, ts, cloud in gaps[1:3]]
    scenes = [_frames(rng), _frames(rng, n_obj=5, n_fp=2), gaps]
    torch.manual_seed(0)
    model = AssociationNet(ModelConfig(normalization=normalization, use_points=use_points)).eval()
    thr = 0.4 if normalization == "sigmoid" else 0.05
    got, got_m = _run(LearnedScorer(model, threshold=thr, engine=engine), scenes)
    want, want_m = _run(ReferenceLearnedScorer(model, threshold=thr), scenes)
    assert len(got) == len(want) and len(got_m) == len(want_m) and len(want_m) > 10
    assert all(_bits_equal(a, b) for a, b in zip(got, want))
    assert all(np.array_equal(np.isfinite(a), np.isfinite(b)) for a, b in zip(got_m, want_m))
    assert max(np.abs(a[np.isfinite(b)] - b[np.isfinite(b)]).max(initial=0.0) for a, b in zip(got_m, want_m)) < 1e-6
    # the case is not trivial: pairs are scored, tracks are kept, some ids are reused
    assert sum(np.isfinite(m).sum() for m in want_m) > 100
    ids = np.concatenate([a for a in want[4::5]])
    assert len(np.unique(ids)) < len(ids) / 2


def test_lidar_points_are_the_reference(synthetic_dataset, synthetic_data):
    """lidar_points' one-pass transform gives transform_points' cloud, bit for bit, with one
    sweep and with several, in every coordinate frame."""
    from nutrack.data.boxes import transform_points
    from nutrack.data.nuscenes_io import load_pcd_bin

    data = synthetic_data
    frames = [f for s in data.scenes(synthetic_dataset.val_split) for f in s.frames][:6]
    for f in frames:
        sd = data.nusc.get("sample_data", f.lidar_token)
        for coords in ("global", "ego", "lidar"):
            for nsweeps in (1, 3):
                got = data.lidar_points(f, nsweeps=nsweeps, coordinates=coords)
                # the reference: transform_points on each sweep, as before issue 11, item 4
                target = {"global": np.eye(4), "ego": np.linalg.inv(data._pose(sd)),
                          "lidar": np.linalg.inv(data._pose(sd) @ data._calib(sd))}[coords]
                clouds, cur = [], sd
                for _ in range(nsweeps):
                    pts = load_pcd_bin(data._sd_path(cur))
                    m = target @ data._pose(cur) @ data._calib(cur)
                    out = np.empty((len(pts), 5), np.float32)
                    out[:, :3] = transform_points(pts[:, :3], m)[:, :3]
                    out[:, 3] = pts[:, 3]
                    out[:, 4] = (sd["timestamp"] - cur["timestamp"]) * 1e-6
                    clouds.append(out)
                    if not cur["prev"]:
                        break
                    cur = data.nusc.get("sample_data", cur["prev"])
                assert _bits_equal(got, np.concatenate(clouds))


def test_same_rows_finds_a_detection_by_its_bits():
    """observe() finds the detections __call__ encoded by their rows' bits: the last of equal
    rows, -1 for a row not there, and -0.0 is not 0.0 (bytes, as the keys it replaced)."""
    from nutrack.model import _feature_kernels as kernels
    from nutrack.model.scorer import _row_bits

    rng = np.random.default_rng(0)
    boxes = rng.uniform(1, 5, (6, 7)).astype(np.float32)
    vel = rng.normal(0, 1, (6, 2)).astype(np.float32)
    boxes[4], vel[4] = boxes[1], vel[1]  # rows 1 and 4 the same
    seen = Detections(boxes, vel, np.full(6, 0.5, np.float32), np.zeros(6, np.int64))
    later = seen.select(np.array([4, 0, 2]))
    vel2 = later.velocities.copy()
    vel2[2, 0] = -0.0 if vel2[2, 0] == 0 else vel2[2, 0] + np.float32(1e-6)
    other = Detections(later.boxes, vel2, later.scores, later.classes)
    got = kernels.same_rows(*_row_bits(seen), *_row_bits(other), np.array([0, 1, 2]))
    assert got.tolist() == [4, 0, -1]
    zero = Detections(boxes[:1], np.zeros((1, 2), np.float32), np.ones(1, np.float32), np.zeros(1, np.int64))
    minus = Detections(boxes[:1], np.array([[-0.0, 0.0]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int64))
    assert kernels.same_rows(*_row_bits(zero), *_row_bits(minus), np.array([0])).tolist() == [-1]


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_tracks_the_scorer_never_saw_updated(engine):
    """Tracks observe() never reported (another tracker's, or one that skips observe) are
    encoded from their predicted boxes, next to the ones it knows: the reference's scores."""
    from nutrack.scoring import TrackView

    rng = np.random.default_rng(4)
    (det, ts, cloud), (det2, ts2, _) = _frames(rng, n_frames=2, n_obj=6, n_fp=0)[:2]
    torch.manual_seed(0)
    model = AssociationNet(ModelConfig()).eval()
    got_s, want_s = LearnedScorer(model, threshold=0.1, engine=engine), ReferenceLearnedScorer(model, threshold=0.1)
    ctx = FrameContext(timestamp=ts, time_lag=0.0, index=0, sample_token="a", points=lambda: cloud)
    ctx2 = FrameContext(timestamp=ts2, time_lag=ts2 - ts, index=1, sample_token="b", points=lambda: cloud)
    m = len(det2)
    tracks = TrackView(ids=np.arange(m, dtype=np.int64)[::-1].copy(), classes=det2.classes, boxes=det2.boxes,
                       velocities=det2.velocities, scores=det2.scores, hits=np.ones(m, np.int64),
                       age=np.ones(m, np.int64), time_since_update=np.ones(m, np.int64), confirmed=np.ones(m, bool))
    known = np.arange(0, m, 2)  # every other id was updated with a detection of the first frame
    for scorer in (got_s, want_s):
        scorer.observe(known, np.arange(len(known)), det, ctx)
    got, want = got_s(tracks, det2, ctx2), want_s(tracks, det2, ctx2)
    assert np.array_equal(np.isfinite(got), np.isfinite(want)) and np.isfinite(want).sum() >= m
    assert np.abs(got[np.isfinite(want)] - want[np.isfinite(want)]).max() < 1e-6
