"""The devkit's tracking evaluation with its classes in parallel processes.

``TrackingEval.evaluate`` evaluates each tracking class on its own — a ``TrackingEvaluation``
per class, whose per-class label metrics ``TrackingMetrics`` then averages (or sums) over the
classes — and that per-class loop is where nearly all of its time goes. :func:`evaluate_by_class`
runs the devkit's own ``evaluate`` in forked worker processes, each with the configuration
narrowed to its classes, and puts the per-class label metrics and metric data into one
``TrackingMetrics`` / ``TrackingMetricDataList`` of the full configuration: the numbers of a
serial run (tests compare them on several results). Nothing of the metric is re-implemented.

The workers are forked so that they inherit the loaded tracks instead of receiving a pickled
copy; the evaluation uses numpy, pandas, scipy and motmetrics only, which are safe to fork.
"""
from __future__ import annotations

import contextlib
import copy
import io
import multiprocessing
import time
from typing import Any, Dict, List, Tuple

__all__ = ["evaluate_by_class", "devkit_quiet"]

# The classes with the most boxes take most of the time: hand them out first.
_HEAVY_FIRST = ("car", "pedestrian", "truck")
_FORKED: Dict[str, Any] = {}


@contextlib.contextmanager
def devkit_quiet():
    """Silence the devkit: it prints progress and tables (stdout) and motmetrics progress bars
    (stderr)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _evaluate_classes(class_names: List[str]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Any]]:
    """In a worker: the devkit's ``evaluate`` over ``class_names`` only."""
    evaluation = copy.copy(_FORKED["evaluation"])
    evaluation.cfg = copy.copy(evaluation.cfg)
    evaluation.cfg.class_names = list(class_names)
    with devkit_quiet():
        metrics, data = _FORKED["evaluate"](evaluation)
    return metrics.label_metrics, {c: data[c] for c in class_names}


def evaluate_by_class(evaluation: Any, workers: int) -> Tuple[Any, Any]:
    """``evaluation.evaluate()`` of a loaded ``TrackingEval``, its classes spread over
    ``workers`` processes; returns what the devkit's ``evaluate`` returns."""
    from nuscenes.eval.tracking.data_classes import TrackingMetricDataList, TrackingMetrics

    start = time.time()
    names = sorted(evaluation.cfg.class_names, key=lambda c: (c not in _HEAVY_FIRST, _rank(c)))
    # The class method, not the instance's attribute: a caller may have replaced the
    # instance's ``evaluate`` with a call of this function.
    _FORKED.update(evaluation=evaluation, evaluate=type(evaluation).evaluate)
    try:
        with multiprocessing.get_context("fork").Pool(max(1, min(workers, len(names)))) as pool:
            parts = pool.map(_evaluate_classes, [[c] for c in names], chunksize=1)
    finally:
        _FORKED.clear()
    metrics, data = TrackingMetrics(evaluation.cfg), TrackingMetricDataList()
    by_class = {c: part for c, part in zip(names, parts)}
    for class_name in evaluation.cfg.class_names:  # the devkit's class order
        label_metrics, class_data = by_class[class_name]
        for metric_name, values in label_metrics.items():
            metrics.label_metrics[metric_name][class_name] = values[class_name]
        data.set(class_name, class_data[class_name])
    metrics.add_runtime(time.time() - start)
    return metrics, data


def _rank(class_name: str) -> int:
    return _HEAVY_FIRST.index(class_name) if class_name in _HEAVY_FIRST else len(_HEAVY_FIRST)
