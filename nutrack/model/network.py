"""The association network: object encoder (geometry + class + PointNet over the object's own
points) and a pairwise head giving one logit per (track, detection) candidate pair."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nutrack.data.classes import NUM_CLASSES
from nutrack.model.features import DEFAULT_GATES, GEOM_DIM, PAIR_DIM, POINT_DIM, ObjectInputs

__all__ = ["ModelConfig", "AssociationNet", "object_tensors", "pair_probabilities"]

NORMALIZATIONS = ("sigmoid", "softmax")


@dataclass
class ModelConfig:
    """Architecture and scoring settings, stored in every checkpoint.

    hidden: width of the object features and the pair MLP; point_hidden: PointNet width;
    class_dim: class-embedding width; use_points: False drops the point features (ablation);
    max_points: points per object fed to the PointNet; normalization: ``"sigmoid"`` (each pair
    0-1) or ``"softmax"`` (over each track's candidates plus a no-match slot); gates: per-class
    candidate gate (m); threshold: the match threshold the tracker uses on the normalised
    scores; alpha, gamma: focal-loss parameters.
    """

    hidden: int = 64
    point_hidden: int = 64
    class_dim: int = 8
    use_points: bool = True
    max_points: int = 32
    normalization: str = "sigmoid"
    gates: Tuple[float, ...] = DEFAULT_GATES
    threshold: float = 0.3
    alpha: float = 0.25
    gamma: float = 2.0

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        self.gates = tuple(float(g) for g in self.gates)
        if len(self.gates) != NUM_CLASSES or min(self.gates) <= 0:
            raise ValueError(f"gates must be {NUM_CLASSES} positive distances, got {self.gates}")
        for name in ("hidden", "point_hidden", "class_dim", "max_points"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gates"] = list(self.gates)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class _Sequential(nn.Sequential):
    """``nn.Sequential`` whose Linear and ReLU layers run as the functions their ``forward``
    calls (``F.linear``, ``torch.relu``): the same results, without a module call per layer,
    which costs more than the layer itself on the tracker's tens of objects a frame. Other
    layers are called as modules; the parameters and their names are nn.Sequential's."""

    def forward(self, x):
        for layer in self:
            kind = type(layer)
            if kind is nn.Linear:
                x = F.linear(x, layer.weight, layer.bias)
            elif kind is nn.ReLU and not layer.inplace:
                x = torch.relu(x)
            else:
                x = layer(x)
        return x


def _mlp(*sizes: int, last_act: bool = True) -> nn.Sequential:
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.ReLU())
    return _Sequential(*layers)


class AssociationNet(nn.Module):
    """Scores (track, detection) pairs.

    * PointNet: a shared MLP over each object's points (local box coordinates, intensity),
      masked max-pooling -> ``point_hidden`` features (zeros for an object with no points).
    * Object encoder: MLP over [geometry relative to the ego, class embedding, point features].
    * Pair head: MLP over [track feature, detection feature, |difference|, embedded pair
      geometry (motion-compensated centre distance, giou_bev, iou_3d, ...)] -> one logit.
    * No-match head (softmax normalisation): a logit per track for the "no match" slot.
    """

    def __init__(self, config: Optional[ModelConfig] = None):
        super().__init__()
        self.config = c = config or ModelConfig()
        self.point_mlp = _mlp(POINT_DIM, 32, c.point_hidden)
        self.class_embed = nn.Embedding(NUM_CLASSES, c.class_dim)
        self.object_mlp = _mlp(GEOM_DIM + c.class_dim + c.point_hidden, 2 * c.hidden, c.hidden)
        self.pair_geo = _mlp(PAIR_DIM, c.hidden)
        self.pair_mlp = _Sequential(_mlp(4 * c.hidden, 2 * c.hidden, c.hidden), nn.Linear(c.hidden, 1))
        self.nomatch = _Sequential(_mlp(c.hidden, c.hidden), nn.Linear(c.hidden, 1))

    # -- features ---------------------------------------------------------------------------
    def encode(self, obj: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``(N, hidden)`` object features from :func:`object_tensors` output."""
        pts, mask = obj["points"], obj["mask"]
        n = obj["geom"].shape[0]
        if self.config.use_points:
            # points sit in slots 0..count-1 of each object: trim the padding shared by all
            # (at least one slot, so that the PointNet always takes part in the graph, as DDP needs)
            k = max(1, _max_count(mask) if n else 0)
            hp = self.point_mlp(pts[:, :k])  # (N, k, C), >= 0 (ends in a ReLU)
            # masked max seeded with 0: an object without points gets zeros
            h = (hp * mask[:, :k].unsqueeze(-1).to(hp.dtype)).amax(dim=1) if pts.shape[1] else \
                hp.new_zeros((n, hp.shape[-1]))
        else:
            h = obj["geom"].new_zeros((n, self.config.point_hidden))
        # F.embedding: nn.Embedding's forward (no max_norm here), without the module call
        emb = F.embedding(obj["classes"], self.class_embed.weight, self.class_embed.padding_idx)
        x = torch.cat([obj["geom"], emb, h], dim=1)
        return self.object_mlp(x)

    def pair_logits(self, ft: torch.Tensor, fd: torch.Tensor, geo: torch.Tensor) -> torch.Tensor:
        """``(P,)`` logits of pairs from track features ``ft (P, H)``, detection features
        ``fd (P, H)`` and pair geometry ``geo (P, PAIR_DIM)``."""
        x = torch.cat([ft, fd, (ft - fd).abs(), self.pair_geo(geo)], dim=1)
        return self.pair_mlp(x).squeeze(1)

    def nomatch_logits(self, ft: torch.Tensor) -> torch.Tensor:
        return self.nomatch(ft).squeeze(1)

    def forward(self, batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Training forward: ``batch`` from :func:`nutrack.model.training_data.collate` (on the device).

        Returns pair logits ``(P,)`` and no-match logits of the queries ``(Q,)``. The no-match
        head always runs (so every parameter receives a gradient, as DDP requires); the
        sigmoid loss simply ignores it.
        """
        f = self.encode(batch["objects"])
        logits = self.pair_logits(f[batch["pair_t"]], f[batch["pair_d"]], batch["pair_geo"])
        nm = self.nomatch_logits(f[batch["query_obj"]])
        return logits, nm


def _max_count(mask: torch.Tensor) -> int:
    """The most True values in a row of a bool ``(N, K)`` mask; numpy's sum on a CPU tensor
    (a third of torch's sum + max + item on a frame's few objects), torch's elsewhere."""
    if mask.device.type == "cpu":
        return int(mask.numpy().sum(axis=1).max())
    return int(mask.sum(dim=1).max().item())


def object_tensors(obj: ObjectInputs, device) -> Dict[str, torch.Tensor]:
    """:class:`ObjectInputs` as contiguous tensors on ``device``."""
    return {
        "geom": torch.from_numpy(np.ascontiguousarray(obj.geom, np.float32)).to(device),
        "classes": torch.from_numpy(np.ascontiguousarray(obj.classes, np.int64)).to(device),
        "points": torch.from_numpy(np.ascontiguousarray(obj.points, np.float32)).to(device),
        "mask": torch.from_numpy(np.ascontiguousarray(obj.mask, bool)).to(device),
    }


def pair_probabilities(logits: torch.Tensor, nomatch: Optional[torch.Tensor], pair_q: torch.Tensor,
                       num_queries: int, normalization: str) -> torch.Tensor:
    """Normalised pair scores: ``sigmoid(logit)``, or the softmax over each query's candidate
    pairs and its no-match slot (``nomatch (Q,)``, ``pair_q (P,)`` the query of each pair)."""
    if normalization == "sigmoid":
        return torch.sigmoid(logits)
    if normalization != "softmax":
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if logits.numel() == 0:
        return logits
    # stable per-group softmax: subtract each group's max over its pairs and no-match slot
    gmax = nomatch.detach().clone()
    gmax = gmax.scatter_reduce(0, pair_q, logits.detach(), reduce="amax", include_self=True)
    e = torch.exp(logits - gmax[pair_q])
    denom = torch.exp(nomatch - gmax).index_add(0, pair_q, e)
    return e / denom[pair_q]
