"""The association network's and the confidence head's inference on the CPU, one numba call
per network and frame (the learned tracker's CPU engine).

On the CPU the tracker's tensors are tiny (tens of objects, a few hundred points a frame), and
torch's per-operator dispatch cost more than the arithmetic: an ``encode`` of ~13 objects took
~95 us through torch against ~22 us here, and in the tracker, where every call finds its code
cold, twice that. Here each network is one compiled function: the matrix products go to BLAS
(numba's ``np.dot``, SciPy's BLAS), the rest (bias, ReLU, the PointNet's pooling, the class
embedding, the pair features, sigmoid / softmax) are loops. The PointNet runs on the real points
only (packed rows, no padding slots), which the masked max-pool ignores anyway.

The results equal torch's up to float32 rounding (a different BLAS sums in another order; the
tests hold them within 1e-5 of :class:`nutrack.model.network.AssociationNet` and
:class:`nutrack.model.confidence.ConfidenceNet`). The weights are copied when the engine is
built: build a new one after changing the model. Layers other than ``nn.Linear`` and
``nn.ReLU`` are not supported (:func:`supported` says whether a model can run here; the scorer
keeps torch for those).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch.nn as nn
from numba import njit

__all__ = ["NumbaAssociationNet", "NumbaConfidenceNet", "supported"]

_Layers = Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...], np.ndarray]


class UnsupportedLayer(ValueError):
    """A module the numba engine cannot run."""


def _flatten(module: nn.Module, out: List[list]) -> None:
    """``out``: ``[weight^T, bias, relu after]`` for each ``nn.Linear`` of a Sequential (nested ones
    included), in order."""
    if isinstance(module, nn.Sequential):
        for child in module:
            _flatten(child, out)
    elif type(module) is nn.Linear:
        w = module.weight.detach().cpu().float().numpy()
        b = (module.bias.detach().cpu().float().numpy() if module.bias is not None
             else np.zeros(w.shape[0], np.float32))
        out.append([np.ascontiguousarray(w.T), np.ascontiguousarray(b), False])
    elif type(module) is nn.ReLU and out and not out[-1][2]:
        out[-1][2] = True
    else:
        raise UnsupportedLayer(f"the numba engine runs nn.Linear and nn.ReLU layers only, not {module!r}")


def _layers(module: nn.Module) -> _Layers:
    """A Sequential as numba arguments: the transposed weights, the biases, the ReLU flags."""
    flat: List[list] = []
    _flatten(module, flat)
    return tuple(f[0] for f in flat), tuple(f[1] for f in flat), np.array([f[2] for f in flat], np.bool_)


def supported(model: nn.Module) -> bool:
    """Whether :class:`NumbaAssociationNet` can run ``model`` (an ``AssociationNet``)."""
    try:
        NumbaAssociationNet(model)
    except UnsupportedLayer:
        return False
    return True


# -- kernels --------------------------------------------------------------------------------
@njit(cache=True)
def _mlp(x, weights, biases, relu):
    """``x`` through the layers: ``x @ W^T + b``, then ReLU where flagged."""
    for i in range(len(weights)):
        y = np.dot(x, weights[i])
        b = biases[i]
        for r in range(y.shape[0]):
            for c in range(y.shape[1]):
                v = y[r, c] + b[c]
                y[r, c] = max(v, np.float32(0.0)) if relu[i] else v
        x = y
    return x


@njit(cache=True)
def _encode(geom, classes, points, mask, embedding, point_w, point_b, point_relu, obj_w, obj_b, obj_relu,
            use_points, point_hidden):
    """``AssociationNet.encode``: PointNet over each object's real points (slots ``0..count-1``),
    max-pooled from 0, next to the geometry and the class embedding, through the object MLP."""
    n, k = mask.shape
    counts = np.zeros(n, np.int64)
    if use_points:
        for b in range(n):
            for s in range(k):
                if mask[b, s]:
                    counts[b] += 1
    packed = np.empty((counts.sum(), points.shape[2]), np.float32)
    r = 0
    for b in range(n):
        for s in range(counts[b]):
            packed[r] = points[b, s]
            r += 1
    gd, ed = geom.shape[1], embedding.shape[1]
    x = np.zeros((n, gd + ed + point_hidden), np.float32)
    if len(packed):
        h = _mlp(packed, point_w, point_b, point_relu)
        r = 0
        for b in range(n):
            for s in range(counts[b]):
                for j in range(point_hidden):
                    x[b, gd + ed + j] = max(x[b, gd + ed + j], h[r, j])
                r += 1
    for b in range(n):
        x[b, :gd] = geom[b]
        x[b, gd:gd + ed] = embedding[classes[b]]
    return _mlp(x, obj_w, obj_b, obj_relu)


@njit(cache=True)
def _sigmoid(v):
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))


@njit(cache=True)
def _pair_scores(ft, fd, ti, di, geo, geo_w, geo_b, geo_relu, pair_w, pair_b, pair_relu, nm_w, nm_b, nm_relu,
                 softmax):
    """``AssociationNet.pair_logits`` of the pairs ``(ti, di)`` (rows of the track and detection
    features), normalised as ``pair_probabilities``: sigmoid, or the softmax over each track's
    pairs and its no-match logit."""
    p, h = ti.shape[0], ft.shape[1]
    g = _mlp(geo, geo_w, geo_b, geo_relu)
    x = np.empty((p, 3 * h + g.shape[1]), np.float32)
    for k in range(p):
        a, b = ft[ti[k]], fd[di[k]]
        for j in range(h):
            x[k, j] = a[j]
            x[k, h + j] = b[j]
            x[k, 2 * h + j] = abs(a[j] - b[j])
        x[k, 3 * h:] = g[k]
    logits = _mlp(x, pair_w, pair_b, pair_relu)[:, 0].copy()
    if not softmax:
        for k in range(p):
            logits[k] = _sigmoid(logits[k])
        return logits
    nomatch = _mlp(ft, nm_w, nm_b, nm_relu)[:, 0].copy()
    top = nomatch.copy()
    for k in range(p):
        top[ti[k]] = max(top[ti[k]], logits[k])
    denom = np.exp(nomatch - top)
    for k in range(p):
        logits[k] = np.exp(logits[k] - top[ti[k]])
        denom[ti[k]] += logits[k]
    for k in range(p):
        logits[k] /= denom[ti[k]]
    return logits


@njit(cache=True)
def _confidence(x, w, b, relu):
    logits = _mlp(x, w, b, relu)
    out = np.empty(x.shape[0], np.float32)
    for r in range(x.shape[0]):
        out[r] = _sigmoid(logits[r, 0])
    return out


# -- engines --------------------------------------------------------------------------------
class NumbaAssociationNet:
    """:class:`nutrack.model.network.AssociationNet`'s inference in numba (see the module
    docstring); features are float32 numpy arrays ``(N, hidden)``."""

    def __init__(self, model):
        c = model.config
        self.use_points = bool(c.use_points)
        self.point_hidden = int(c.point_hidden)
        self.softmax = c.normalization == "softmax"
        self.embedding = np.ascontiguousarray(model.class_embed.weight.detach().cpu().float().numpy())
        self.point = _layers(model.point_mlp)
        self.object = _layers(model.object_mlp)
        self.pair_geo = _layers(model.pair_geo)
        self.pair = _layers(model.pair_mlp)
        self.nomatch = _layers(model.nomatch)

    def encode(self, obj) -> np.ndarray:
        """``(N, hidden)`` features of :class:`nutrack.model.features.ObjectInputs`."""
        return _encode(np.ascontiguousarray(obj.geom, np.float32), np.ascontiguousarray(obj.classes, np.int64),
                       np.ascontiguousarray(obj.points, np.float32), np.ascontiguousarray(obj.mask, np.bool_),
                       self.embedding, *self.point, *self.object, self.use_points, self.point_hidden)

    def pair_scores(self, ft: np.ndarray, fd: np.ndarray, ti: np.ndarray, di: np.ndarray,
                    geo: np.ndarray) -> np.ndarray:
        """``(P,)`` float32 normalised scores of the pairs ``(ti, di)`` of track features ``ft``
        and detection features ``fd`` with pair geometry ``geo (P, PAIR_DIM)``."""
        ft, fd = np.ascontiguousarray(ft, np.float32), np.ascontiguousarray(fd, np.float32)
        return _pair_scores(ft, fd, np.ascontiguousarray(ti, np.int64), np.ascontiguousarray(di, np.int64),
                            np.ascontiguousarray(geo, np.float32), *self.pair_geo, *self.pair, *self.nomatch,
                            self.softmax)


class NumbaConfidenceNet:
    """:class:`nutrack.model.confidence.ConfidenceNet`'s ``probabilities`` in numba."""

    def __init__(self, net):
        self.layers = _layers(_confidence_seq(net))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _confidence(np.ascontiguousarray(x, np.float32), *self.layers)


def _confidence_seq(net) -> nn.Sequential:
    """The head's layers as the Sequential its ``forward`` computes: ReLU after all but the last."""
    layers: List[nn.Module] = []
    for i, linear in enumerate(net.layers):
        layers.append(linear)
        if i < len(net.layers) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
