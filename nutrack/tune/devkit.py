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

import contextlib
import io
import os
import tempfile
from typing import Any, Dict, Optional, Sequence

from nutrack.eval import _import_tracking_eval

__all__ = ["DevkitSession"]


@contextlib.contextmanager
def _quiet():
    """The devkit prints progress and tables (stdout) and motmetrics progress bars (stderr)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


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
        with _quiet():
            if nusc is None:
                from nuscenes import NuScenes

                nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
            self.nusc = nusc
            gt = self._load(None, gt=True)
            self.sample_tokens = set(gt.sample_tokens)
            self.gt_tracks = self._tracks(gt, gt=True)
        self.scene_tokens = sorted(self.gt_tracks)

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
        ``workers`` > 1 evaluates the classes in that many processes (see :func:`_by_class`)."""
        with _quiet():
            pred = self._load(results_path, gt=False)
            if set(pred.sample_tokens) != self.sample_tokens:  # TrackingEval asserts the same
                raise ValueError(f"{results_path}: its samples are not those of split {self.split!r}")
            pred_tracks = self._tracks(pred, gt=False)
            keep = set(self.scene_tokens if scene_tokens is None else scene_tokens)
            evaluation = self._evaluation({k: v for k, v in self.gt_tracks.items() if k in keep},
                                          {k: v for k, v in pred_tracks.items() if k in keep})
            metrics = _by_class(evaluation, workers) if workers > 1 else evaluation.evaluate()[0]
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


# -- classes in parallel processes ----------------------------------------------------------
# The devkit evaluates each class on its own (``TrackingEvaluation`` per class, then per-class
# label metrics that ``TrackingMetrics`` averages or sums over the classes). So each worker
# runs the devkit's own ``TrackingEval.evaluate`` with the configuration narrowed to one
# class, and the parent puts the per-class label metrics into one ``TrackingMetrics`` of the
# full configuration: the same numbers as a serial run (a test checks equality).
_FORKED: Dict[str, Any] = {}


def _evaluate_one_class(class_name: str) -> Dict[str, Dict[str, float]]:
    import copy

    evaluation = copy.copy(_FORKED["evaluation"])
    evaluation.cfg = copy.copy(evaluation.cfg)
    evaluation.cfg.class_names = [class_name]
    with _quiet():
        metrics, _ = evaluation.evaluate()
    return {name: values for name, values in metrics.label_metrics.items()}


def _by_class(evaluation, workers: int):
    import multiprocessing
    import time

    from nuscenes.eval.tracking.data_classes import TrackingMetrics

    start = time.time()
    # The two classes with the most boxes take most of the time: start them first.
    classes = sorted(evaluation.cfg.class_names, key=lambda c: c not in ("car", "pedestrian"))
    _FORKED["evaluation"] = evaluation  # inherited by the forked workers, never pickled
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(classes))) as pool:
            parts = dict(zip(classes, pool.map(_evaluate_one_class, classes, chunksize=1)))
    finally:
        _FORKED.clear()
    metrics = TrackingMetrics(evaluation.cfg)
    for class_name in evaluation.cfg.class_names:
        for name, values in parts[class_name].items():
            metrics.label_metrics[name][class_name] = values[class_name]
    metrics.add_runtime(time.time() - start)
    return metrics
