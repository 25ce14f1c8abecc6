"""The devkit's tracking evaluation, loaded once and run on many results.

A tuning study scores hundreds of tracking results on one split. ``TrackingEval`` reloads the
whole dataset and the ground truth for each of them; :class:`DevkitSession` loads them once,
with the devkit's own loaders, and then runs the devkit's own ``TrackingEval.evaluate`` on each
result — optionally on a subset of the split's scenes, which is what cheap early stopping
scores a trial on. Nothing of the metric is re-implemented here: the tracks go through the same
``load_prediction_of_sample_tokens`` / ``add_center_dist`` / ``filter_eval_boxes`` /
``create_tracks`` steps as in ``TrackingEval.__init__``, then into ``TrackingEval.evaluate``.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional, Sequence

from nutrack.eval import _import_tracking_eval
from nutrack.eval_parallel import devkit_quiet
from nutrack.eval_merge import linear_merge

__all__ = ["DevkitSession"]




class DevkitSession:
    """The devkit's ground truth of one split, ready to score tracking results.

    Args:
        dataroot, version, split: the dataset and split (a devkit split or a ``splits.json``
            split), as for :func:`nutrack.eval.evaluate_tracking`.
        nusc: an already loaded devkit ``NuScenes`` of that dataset (saves a load).
    """

    def __init__(self, dataroot: str, version: str, split: str, nusc: Any = None) -> None:
        self.TrackingEval, config_factory = _import_tracking_eval()
        from nuscenes.eval.common import loaders
        from nuscenes.eval.tracking.data_classes import TrackingBox
        from nuscenes.eval.tracking.loaders import create_tracks

        self.cfg = config_factory("tracking_nips_2019")
        self.split = split
        self._loaders, self._box, self._create_tracks = loaders, TrackingBox, create_tracks
        with devkit_quiet():
            if nusc is None:
                from nuscenes import NuScenes

                nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
            self.nusc = nusc
            gt = self._load(None, gt=True)
            self.sample_tokens = set(gt.sample_tokens)
            self.gt_tracks = self._tracks(gt, gt=True)
        self.scene_tokens = sorted(self.gt_tracks)

    def gt_track_counts(self) -> Dict[str, int]:
        """Distinct ground-truth objects per class in the split (after the devkit's filters)."""
        ids: Dict[str, set] = {}
        for scene in self.gt_tracks.values():
            for boxes in scene.values():
                for box in boxes:
                    ids.setdefault(box.tracking_name, set()).add(box.tracking_id)
        return {name: len(members) for name, members in ids.items()}

    def _load(self, results_path: Optional[str], gt: bool):
        """Ground truth or predictions, read as ``TrackingEval.__init__`` reads them."""
        from nuscenes.utils.splits import is_predefined_split

        L, box, limit = self._loaders, self._box, self.cfg.max_boxes_per_sample
        if is_predefined_split(split_name=self.split):
            if gt:
                return L.load_gt(self.nusc, self.split, box, verbose=False)
            return L.load_prediction(results_path, limit, box, verbose=False)[0]
        tokens = L.get_samples_of_custom_split(split_name=self.split, nusc=self.nusc)
        if gt:
            return L.load_gt_of_sample_tokens(self.nusc, tokens, box, verbose=False)
        return L.load_prediction_of_sample_tokens(results_path, limit, box, sample_tokens=tokens,
                                                  verbose=False)[0]

    def _tracks(self, boxes, gt: bool) -> Dict[str, Any]:
        boxes = self._loaders.add_center_dist(self.nusc, boxes)
        boxes = self._loaders.filter_eval_boxes(self.nusc, boxes, self.cfg.class_range, verbose=False)
        return self._create_tracks(boxes, self.nusc, self.split, gt=gt)

    def score(self, results_path: str, scene_tokens: Optional[Sequence[str]] = None,
              workers: int = 1) -> Dict[str, Any]:
        """The devkit's metrics summary (``amota``, ..., ``label_metrics``) of a tracking file
        holding every sample of the split, over ``scene_tokens`` (default: all of them).
        ``workers`` > 1 evaluates the classes in that many processes
        (:func:`nutrack.eval_parallel.evaluate_by_class`)."""
        with devkit_quiet(), linear_merge():  # linear_merge: the devkit's per-scene merge without its quadratic step
            pred = self._load(results_path, gt=False)
            if set(pred.sample_tokens) != self.sample_tokens:  # TrackingEval asserts the same
                raise ValueError(f"{results_path}: its samples are not those of split {self.split!r}")
            pred_tracks = self._tracks(pred, gt=False)
            keep = set(self.scene_tokens if scene_tokens is None else scene_tokens)
            evaluation = self._evaluation({k: v for k, v in self.gt_tracks.items() if k in keep},
                                          {k: v for k, v in pred_tracks.items() if k in keep})
            if workers > 1:
                from nutrack.eval_parallel import evaluate_by_class

                metrics = evaluate_by_class(evaluation, workers)[0]
            else:
                metrics = evaluation.evaluate()[0]
        return metrics.serialize()

    def _evaluation(self, gt_tracks: Dict[str, Any], pred_tracks: Dict[str, Any]):
        """A ``TrackingEval`` holding these tracks, without its loading ``__init__`` (which
        would read the dataset and the result file again): exactly the attributes its
        ``evaluate`` reads."""
        evaluation = self.TrackingEval.__new__(self.TrackingEval)
        evaluation.cfg, evaluation.verbose, evaluation.render_classes = self.cfg, False, None
        evaluation.output_dir = tempfile.gettempdir()
        evaluation.plot_dir = os.path.join(evaluation.output_dir, "plots")
        evaluation.tracks_gt, evaluation.tracks_pred = gt_tracks, pred_tracks
        return evaluation
