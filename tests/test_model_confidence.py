"""The track-confidence head: its history window against a naive per-track list, its inputs,
the tracker's ``rescore`` hook, the rollout labels (the devkit's matching rule and range), its
training and its place in checkpoints."""
import numpy as np
import pytest
import torch

from nutrack.data import Detections
from nutrack.data.classes import CLASS_RANGE_ARRAY, NUM_CLASSES
from nutrack.model.confidence import (HISTORY_FIELDS, ConfidenceConfig, ConfidenceNet, TrackHistory,
                                      confidence_inputs)
from nutrack.model.features import GEOM_DIM
from nutrack.scoring import Scorer, TrackView


def _naive_windows(frames, length):
    """The windows a per-track list of entries gives, for each frame's ids (a track missing
    from a frame starts again)."""
    hist, out = {}, []
    for ids, entries in frames:
        hist = {i: ([e] + hist.get(i, []))[:length] if i in hist else [e] for i, e in zip(ids, entries)}
        w = np.zeros((len(ids), length, HISTORY_FIELDS), np.float32)
        for k, i in enumerate(ids):
            for j, e in enumerate(hist[i]):
                w[k, j] = e
        out.append(w)
    return out


def test_history_windows_match_a_naive_list():
    rng = np.random.default_rng(0)
    for length in (1, 3, 5):
        h = TrackHistory(length)
        frames = []
        for _ in range(30):
            ids = rng.choice(12, size=rng.integers(0, 9), replace=False)
            frames.append((ids, rng.random((len(ids), HISTORY_FIELDS)).astype(np.float32)))
        want = _naive_windows([(list(i), list(e)) for i, e in frames], length)
        seen = {}
        for (ids, entries), w in zip(frames, want):
            got, count, mean = h.push(ids, entries)
            np.testing.assert_array_equal(got, w)
            seen = {int(i): (seen[int(i)][0] + 1, seen[int(i)][1] + float(e[0])) if int(i) in seen else (1, float(e[0]))
                    for i, e in zip(ids, entries)}
            np.testing.assert_array_equal(count, [seen[int(i)][0] for i in ids])
            np.testing.assert_allclose(mean, [seen[int(i)][1] / seen[int(i)][0] for i in ids], rtol=1e-6)
        h.reset()
        assert len(h.ids) == 0


def _view(ids, classes, tsu, hits, age, scores):
    m = len(ids)
    return TrackView(ids=np.asarray(ids, np.int64), classes=np.asarray(classes, np.int64),
                     boxes=np.tile(np.array([[0, 0, 0, 4, 2, 1.5, 0]], np.float32), (m, 1)),
                     velocities=np.zeros((m, 2), np.float32), scores=np.asarray(scores, np.float32),
                     hits=np.asarray(hits, np.int64), age=np.asarray(age, np.int64),
                     time_since_update=np.asarray(tsu, np.int64), confirmed=np.ones(m, bool))


def test_confidence_inputs_columns():
    cfg = ConfidenceConfig(history=3)
    h = TrackHistory(cfg.history)
    geom = np.zeros((2, GEOM_DIM), np.float32)
    geom[:, 13] = [0.5, 0.0]
    x = confidence_inputs(_view([7, 3], [4, 0], [0, 2], [5, 1], [5, 3], [0.9, 0.2]), geom, h)
    assert x.shape == (2, cfg.input_dim) and x.dtype == np.float32
    onehot = x[:, GEOM_DIM:GEOM_DIM + NUM_CLASSES]
    np.testing.assert_array_equal(onehot.argmax(1), [4, 0])
    window = x[:, -HISTORY_FIELDS * cfg.history:].reshape(2, cfg.history, HISTORY_FIELDS)
    np.testing.assert_allclose(window[:, 0], [[0.9, 1, 0.5, 1], [0.2, 0, 0.0, 1]], rtol=1e-6)
    assert (window[:, 1:] == 0).all()  # nothing older yet


@pytest.mark.parametrize("length", [1, 4, 6])
def test_confidence_inputs_are_the_numpy_reference(length):
    """The numba passes (history and rows) give the numpy code's inputs, bit for bit, over a
    run of frames where tracks come, go and come back."""
    from tests._learned_reference import ReferenceTrackHistory, reference_confidence_inputs

    rng = np.random.default_rng(length)
    got_h, want_h = TrackHistory(length), ReferenceTrackHistory(length)
    for _ in range(60):
        m = int(rng.integers(1, 40))
        view = _view(rng.choice(60, m, replace=False), rng.integers(0, NUM_CLASSES, m), rng.integers(0, 12, m),
                     rng.integers(0, 50, m), rng.integers(0, 80, m), rng.random(m))
        geom = rng.normal(0, 1, (m, GEOM_DIM)).astype(np.float32)
        got, want = confidence_inputs(view, geom, got_h), reference_confidence_inputs(view, geom, want_h)
        assert got.dtype == want.dtype and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert confidence_inputs(_view([], [], [], [], [], []), np.zeros((0, GEOM_DIM), np.float32),
                             got_h).shape == (0, ConfidenceConfig(history=length).input_dim)


class _FixedRescore(Scorer):
    """The default geometric scores with a rescore giving every output track ``value``."""

    def __init__(self, value, wrong_shape=False):
        from nutrack.tracking.scorer import AffinityScorer

        self.inner, self.value, self.wrong_shape, self.calls = AffinityScorer("giou_3d"), value, wrong_shape, 0
        self.kind = self.inner.kind

    def __call__(self, tracks, detections, context, candidates=None):
        return self.inner(tracks, detections, context, candidates)

    def rescore(self, tracks, context):
        self.calls += 1
        return np.full(len(tracks) + (1 if self.wrong_shape else 0), self.value, np.float32)


def _detections(n=3, x0=0.0):
    boxes = np.array([[x0 + 10 * i, 0, 0, 4, 2, 1.5, 0] for i in range(n)], np.float32)
    return Detections(boxes, np.zeros((n, 2), np.float32), np.full(n, 0.8, np.float32), np.zeros(n, np.int64))


def test_tracker_reports_the_rescored_scores():
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.params import FilterParams

    scorer = _FixedRescore(0.123)
    tracker = FilterTracker(FilterParams(), scorer=scorer)
    for t in range(3):
        out = tracker.step(_detections(x0=0.1 * t), 0.5 * t)
        assert len(out) == 3
        np.testing.assert_array_equal(out.scores, np.float32(0.123))
    assert scorer.calls == 3
    with pytest.raises(ValueError, match="rescore returned 4 scores for 3 tracks"):
        FilterTracker(FilterParams(), scorer=_FixedRescore(0.5, wrong_shape=True)).step(_detections(), 0.0)


def test_base_scorer_rescore_is_not_called():
    """The base class's rescore keeps the tracker's scores, so the tracker skips it."""
    from nutrack.tracking.filter import FilterTracker

    tracker = FilterTracker()
    assert tracker._rescore is None
    out = tracker.step(_detections(), 0.0)
    np.testing.assert_array_equal(out.scores, np.float32(0.8))


class _GroundTruth:
    def __init__(self, boxes, classes):
        from nutrack.data.nuscenes_io import GroundTruth

        n = len(boxes)
        self.gt = GroundTruth(np.asarray(boxes, np.float32), np.zeros((n, 2), np.float32),
                              np.asarray(classes, np.int64), np.array([f"i{k}" for k in range(n)]),
                              np.array([f"a{k}" for k in range(n)]), np.ones(n, np.int64))

    def ground_truth(self, token, eval_filter=False):
        assert eval_filter  # the labels use the boxes the devkit evaluates
        return self.gt


def test_rollout_labels_follow_the_devkit_rule_and_range():
    from nutrack.model.scorer import RolloutFrame
    from nutrack.train.confidence import rollout_labels

    car_range = CLASS_RANGE_ARRAY[0]
    gt = [[10, 0, 0, 4, 2, 1.5, 0], [20, 0, 0, 4, 2, 1.5, 0]]
    boxes = np.array([[10.5, 0.5, 0, 4, 2, 1.5, 0],  # 0.7 m from a ground-truth car: real
                      [23.0, 0, 0, 4, 2, 1.5, 0],  # 3 m away: false
                      [20.2, 0, 0, 4, 2, 1.5, 0],  # on the second car, but a pedestrian: false
                      [car_range + 5, 0, 0, 4, 2, 1.5, 0]], np.float32)  # beyond the car range: left out
    classes = np.array([0, 0, 4, 0])
    x = np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 5), np.float32)
    fr = RolloutFrame("tok", np.zeros(2), x, boxes, classes, np.full(4, 0.5, np.float32))
    got_x, got_y = rollout_labels([fr], _GroundTruth(gt, [0, 0]))
    np.testing.assert_array_equal(got_y, [1, 0, 0])
    np.testing.assert_array_equal(got_x[:, 0], [0, 1, 2])


def test_fit_head_learns_and_is_deterministic():
    from nutrack.train.confidence import fit_head

    rng = np.random.default_rng(1)
    cfg = ConfidenceConfig(history=1, epochs=15)
    x = rng.normal(size=(2000, cfg.input_dim)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 3] > 0.3).astype(np.float32)
    net, loss = fit_head(x, y, cfg, seed=3)
    p = net.probabilities(x)
    # what AMOTA rewards is the order (focal loss with alpha 0.25 moves the calibration): AUC
    rank = np.empty(len(p))
    rank[np.argsort(p)] = np.arange(len(p))
    pos = y > 0.5
    auc = (rank[pos].sum() - pos.sum() * (pos.sum() - 1) / 2) / (pos.sum() * (~pos).sum())
    assert auc > 0.97, auc
    net2, loss2 = fit_head(x, y, cfg, seed=3)
    assert loss == loss2
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)


def test_confidence_head_in_checkpoints(tmp_path):
    from nutrack.model import AssociationNet, ModelConfig
    from nutrack.model.checkpoint import CheckpointError
    from nutrack.model.scorer import load_scorer
    from nutrack.train.checkpoints import save_checkpoint

    torch.manual_seed(0)
    head = ConfidenceNet(ConfidenceConfig(history=2))
    model = AssociationNet(ModelConfig())
    entry = {"config": head.config.to_dict(), "state": head.state_dict(), "stats": {}}
    path = str(tmp_path / "best.pt")
    save_checkpoint(path, model=model.state_dict(), model_config=model.config.to_dict(), confidence=entry)
    scorer = load_scorer(path)
    assert scorer.confidence is not None and scorer.history.length == 2
    for a, b in zip(scorer.confidence.state_dict().values(), head.state_dict().values()):
        assert torch.equal(a, b)
    save_checkpoint(path, model=model.state_dict(), model_config=model.config.to_dict())
    assert load_scorer(path).confidence is None  # an older checkpoint: the tracker's scores
    bad = dict(entry, state={"layers.0.weight": torch.zeros(1)})
    save_checkpoint(path, model=model.state_dict(), model_config=model.config.to_dict(), confidence=bad)
    with pytest.raises(CheckpointError, match="unusable confidence head"):
        load_scorer(path)


def test_learned_scorer_rescores_with_its_head():
    """Through the tracker: the reported scores are the head's probabilities of the inputs it
    recorded, frame by frame."""
    from nutrack.model import AssociationNet, ModelConfig
    from nutrack.model.scorer import LearnedScorer
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import learned_params

    torch.manual_seed(0)
    head = ConfidenceNet(ConfidenceConfig(history=3))
    scorer = LearnedScorer(AssociationNet(ModelConfig(use_points=False)), threshold=0.0, confidence=head)
    scorer.recorder = []
    tracker = FilterTracker(learned_params(), scorer=scorer)
    outs = [tracker.step(_detections(x0=0.2 * t), 0.5 * t) for t in range(4)]
    assert len(scorer.recorder) == 4
    for out, rec in zip(outs, scorer.recorder):
        np.testing.assert_array_equal(out.scores, head.probabilities(rec.inputs))
        np.testing.assert_array_equal(out.boxes, rec.boxes)
    assert (scorer.recorder[-1].inputs[:, -HISTORY_FIELDS * 3:] != 0).any()
