"""The learned association network of nutrack and its focal loss.

* :class:`AssociationNet` / :class:`ModelConfig` — object encoder (geometry, class, PointNet
  over the object's own points) and pairwise head giving one logit per (track, detection)
  candidate pair; sigmoid (default) or softmax (with a no-match slot) normalisation.
* :func:`sigmoid_focal_loss`, :func:`softmax_focal_loss`, :func:`association_loss`.
* :func:`load_scorer` — the :class:`LearnedScorer` the tracker's ``learned`` method uses;
  :func:`load_model` / :class:`CheckpointError` — checkpoints (:mod:`nutrack.model.checkpoint`).
* :mod:`nutrack.model.training_data` — labelled frames and frame-pair batches for training.

Training: ``python -m nutrack.train`` (see docs/training.md).
"""
from nutrack.model.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_model
from nutrack.model.features import DEFAULT_GATES, ObjectInputs, make_objects
from nutrack.model.focal import sigmoid_focal_loss, softmax_focal_loss
from nutrack.model.loss import association_loss
from nutrack.model.network import AssociationNet, ModelConfig, pair_probabilities
from nutrack.model.scorer import LearnedScorer, load_scorer

__all__ = [
    "AssociationNet",
    "ModelConfig",
    "ObjectInputs",
    "make_objects",
    "DEFAULT_GATES",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "association_loss",
    "pair_probabilities",
    "LearnedScorer",
    "load_scorer",
    "load_model",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
]
