"""The numba engine of the learned tracker (nutrack/model/numba_net.py) against torch: the same
features, pair scores and confidences within float32 rounding, on random networks and inputs
and on the edge cases (objects without points, with every slot full, no objects, tracks without
pairs under softmax)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from nutrack.model import AssociationNet, LearnedScorer, ModelConfig
from nutrack.model.confidence import ConfidenceConfig, ConfidenceNet
from nutrack.model.features import GEOM_DIM, PAIR_DIM, POINT_DIM, ObjectInputs
from nutrack.model.network import object_tensors, pair_probabilities
from nutrack.model.numba_net import NumbaAssociationNet, NumbaConfidenceNet, supported

TOL = 1e-5


def _net(seed: int, **config) -> AssociationNet:
    torch.manual_seed(seed)
    net = AssociationNet(ModelConfig(**config)).eval()
    with torch.no_grad():  # biases away from 0, so that ReLUs cut and the pooling sees signs
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net


def _objects(rng, n: int, k: int = 32, counts=None) -> ObjectInputs:
    """``n`` objects; ``counts``: real points of each (slots 0..count-1), random by default."""
    counts = rng.integers(0, k + 1, n) if counts is None else np.asarray(counts)
    mask = np.arange(k)[None, :] < counts[:, None]
    points = (rng.normal(0, 1, (n, k, POINT_DIM)) * mask[..., None]).astype(np.float32)
    geom = rng.normal(0, 1, (n, GEOM_DIM)).astype(np.float32)
    classes = rng.integers(0, 7, n)
    return ObjectInputs(geom, classes, points, mask, None, None, None)


def _torch_encode(net, obj):
    with torch.inference_mode():
        return net.encode(object_tensors(obj, "cpu")).numpy()


@pytest.mark.parametrize("use_points", [True, False])
@pytest.mark.parametrize("hidden", [(64, 64, 8), (16, 24, 3)])
def test_encode_is_torch(use_points, hidden):
    h, ph, cd = hidden
    net = _net(1, hidden=h, point_hidden=ph, class_dim=cd, use_points=use_points)
    engine = NumbaAssociationNet(net)
    rng = np.random.default_rng(0)
    cases = [_objects(rng, int(rng.integers(1, 40))) for _ in range(20)]
    cases += [_objects(rng, 5, counts=[0] * 5),  # no points at all
              _objects(rng, 3, counts=[32, 0, 32]),  # every slot full, next to an empty one
              _objects(rng, 1, counts=[1]), _objects(rng, 0)]
    for obj in cases:
        want = _torch_encode(net, obj)
        got = engine.encode(obj)
        assert got.shape == want.shape == (len(obj), h) and got.dtype == np.float32
        assert np.abs(got - want).max(initial=0.0) < TOL * max(1.0, np.abs(want).max(initial=0.0))


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
def test_pair_scores_are_torch(normalization):
    net = _net(2, normalization=normalization)
    engine = NumbaAssociationNet(net)
    rng = np.random.default_rng(1)
    for m, n, p in [(1, 1, 1), (7, 5, 20), (30, 40, 90), (4, 3, 0)]:
        ft = rng.normal(0, 1, (m, 64)).astype(np.float32)
        fd = rng.normal(0, 1, (n, 64)).astype(np.float32)
        geo = rng.normal(0, 1, (p, PAIR_DIM)).astype(np.float32)
        ti, di = rng.integers(0, max(m // 2, 1), p), rng.integers(0, n, p)  # some tracks without pairs
        with torch.inference_mode():
            ft_t, ti_t = torch.from_numpy(ft), torch.from_numpy(ti)
            logits = net.pair_logits(ft_t[ti_t], torch.from_numpy(fd)[torch.from_numpy(di)], torch.from_numpy(geo))
            nm = net.nomatch_logits(ft_t) if normalization == "softmax" else None
            want = pair_probabilities(logits, nm, ti_t, m, normalization).numpy()
        got = engine.pair_scores(ft, fd, ti, di, geo)
        assert got.shape == (p,) and got.dtype == np.float32
        assert np.abs(got - want).max(initial=0.0) < TOL


def test_confidence_is_torch():
    torch.manual_seed(3)
    head = ConfidenceNet(ConfidenceConfig(history=3, hidden=32)).eval()
    engine = NumbaConfidenceNet(head)
    rng = np.random.default_rng(2)
    for rows in (0, 1, 80):
        x = rng.normal(0, 1, (rows, head.config.input_dim)).astype(np.float32)
        want = head.probabilities(x)
        got = engine.probabilities(x)
        assert got.shape == want.shape == (rows,) and np.abs(got - want).max(initial=0.0) < TOL


def test_engine_copies_the_weights():
    """The engine is a snapshot: a model changed afterwards needs a new one (documented)."""
    net = _net(4)
    engine = NumbaAssociationNet(net)
    obj = _objects(np.random.default_rng(3), 6)
    before = engine.encode(obj)
    with torch.no_grad():
        net.object_mlp[0].weight.mul_(2.0)
    assert np.array_equal(engine.encode(obj), before)
    assert not np.allclose(NumbaAssociationNet(net).encode(obj), before)


def test_unsupported_layers_keep_torch():
    """A model with another layer (here a dropout) is not run by the numba engine: the scorer
    falls back to torch by default and refuses an explicit numba engine."""
    net = _net(5)
    assert supported(net)
    assert LearnedScorer(net).engine == "numba"
    net.object_mlp.insert(1, nn.Dropout(0.1))
    assert not supported(net)
    assert LearnedScorer(net).engine == "torch"
    with pytest.raises(ValueError, match="nn.Linear and nn.ReLU"):
        LearnedScorer(net, engine="numba")
    with pytest.raises(ValueError, match="engine must be"):
        LearnedScorer(_net(5), engine="onnx")
