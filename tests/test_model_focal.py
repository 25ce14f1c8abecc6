"""The focal losses against direct formulas on known inputs."""
import math

import pytest
import torch

from nutrack.model.focal import sigmoid_focal_loss, softmax_focal_loss


def _direct_sigmoid(x, y, alpha, gamma):
    out = []
    for xi, yi in zip(x, y):
        p = 1.0 / (1.0 + math.exp(-xi))
        pt = p if yi else 1.0 - p
        at = (alpha if yi else 1.0 - alpha) if alpha >= 0 else 1.0
        out.append(-at * (1.0 - pt) ** gamma * math.log(pt))
    return out


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 0.0), (-1.0, 1.5), (0.9, 3.0)])
def test_sigmoid_focal_matches_formula(alpha, gamma):
    x = [-3.0, -0.5, 0.0, 0.7, 2.5, 4.0]
    y = [0, 1, 1, 0, 1, 0]
    got = sigmoid_focal_loss(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64),
                             alpha=alpha, gamma=gamma, reduction="none")
    want = _direct_sigmoid(x, y, alpha, gamma)
    assert got.tolist() == pytest.approx(want, rel=1e-12, abs=1e-15)
    s = sigmoid_focal_loss(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64),
                           alpha=alpha, gamma=gamma)
    assert float(s) == pytest.approx(sum(want), rel=1e-12)


def test_sigmoid_focal_known_value():
    # logit 0 -> p = 0.5; positive, alpha .25, gamma 2: .25 * .25 * ln 2
    v = sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), reduction="sum")
    assert float(v) == pytest.approx(0.25 * 0.25 * math.log(2.0), rel=1e-6)


def test_gamma_zero_no_alpha_is_bce():
    x = torch.randn(50, dtype=torch.float64)
    y = (torch.rand(50, dtype=torch.float64) > 0.7).double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="sum")
    assert float(sigmoid_focal_loss(x, y, alpha=-1, gamma=0)) == pytest.approx(float(bce), rel=1e-12)


def test_sigmoid_focal_stable_for_large_logits():
    v = sigmoid_focal_loss(torch.tensor([80.0, -80.0]), torch.tensor([0.0, 1.0]), reduction="none")
    assert torch.isfinite(v).all()
    assert v.tolist() == pytest.approx([0.75 * 80.0, 0.25 * 80.0], rel=1e-6)


def test_softmax_focal_matches_formula():
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, float("-inf"), 0.0]], dtype=torch.float64)
    target = torch.tensor([2, 0])
    got = softmax_focal_loss(logits, target, gamma=2.0, reduction="none").tolist()
    want = []
    for row, t in zip(logits.tolist(), target.tolist()):
        e = [math.exp(v) for v in row]
        p = e[t] / sum(e)
        want.append(-(1 - p) ** 2 * math.log(p))
    assert got == pytest.approx(want, rel=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), reduction="avg")
    with pytest.raises(ValueError):
        softmax_focal_loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))
