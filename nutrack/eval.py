"""The official nuScenes evaluations (the devkit's ``TrackingEval`` and ``DetectionEval``), wrapped.

    python -m nutrack.eval --results R --dataroot D --version V --split S [--output-dir O]
    python -m nutrack.eval --detection --results DET --dataroot D --version V --split S

``--detection`` scores a detection-submission file with the devkit's ``DetectionEval``
(``detection_cvpr_2019``: mAP, NDS, the five TP errors, per class), see
:func:`evaluate_detection`.

nutrack never re-implements the metrics: this module checks the inputs first (so that a bad
file fails with a message naming the sample, box and field instead of a bare assertion deep
in the devkit), runs ``TrackingEval``, prints the headline metrics (AMOTA, AMOTP, MOTA, IDS,
FRAG, recall) and the per-class table, and writes ``metrics.json`` (the devkit's summary) to
the output folder beside the devkit's own ``metrics_summary.json`` and
``metrics_details.json``.

The devkit's tracking evaluation needs ``motmetrics`` and ``pandas``, which it does not
declare, and raises ``unittest.SkipTest`` instead of ``ImportError`` without them;
:func:`evaluate_tracking` turns that into :class:`EvalDependencyError` with the fix.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
import unittest
from typing import Any, Dict, Optional, Sequence

from nutrack._cli import ArgumentParser, UserError, check_writable_dir, run_main
from nutrack._io import atomic_write_json

__all__ = ["evaluate_tracking", "evaluate_detection", "format_detection_metrics", "EvalDependencyError", "check_eval_available", "default_output_dir",
           "format_metrics", "main", "HEADLINE"]

PROG = "python -m nutrack.eval"

#: The devkit versions this wrapper is tested with.
EVAL_REQUIREMENTS = "motmetrics==1.4.0 pandas>=1.5,<3"
HEADLINE = ("amota", "amotp", "mota", "ids", "frag", "recall")
#: The detection figures printed first, as the devkit names them in its summary.
DETECTION_HEADLINE = ("mean_ap", "nd_score")
#: The devkit's true-positive errors and their names in the nuScenes tables.
_TP_ERRORS = {"trans_err": "ATE", "scale_err": "ASE", "orient_err": "AOE", "vel_err": "AVE", "attr_err": "AAE"}


class EvalDependencyError(UserError, ImportError):
    """The devkit's tracking evaluation cannot run: a dependency it does not declare is missing."""


def _dependency_error(detail: str) -> EvalDependencyError:
    mm, pd = EVAL_REQUIREMENTS.split()
    return EvalDependencyError(
        f"the nuScenes tracking evaluation needs motmetrics and pandas, which nuscenes-devkit does not "
        f"install ({detail}). Install them with: pip install '{mm}' '{pd}'")


def _import_tracking_eval():
    try:
        from nuscenes.eval.common.config import config_factory
        from nuscenes.eval.tracking.evaluate import TrackingEval
    except unittest.SkipTest as e:  # the devkit's way of saying "pandas/motmetrics is missing"
        raise _dependency_error(f"the devkit says: {e}") from None
    except ImportError as e:
        if getattr(e, "name", None) in ("motmetrics", "pandas") or "motmetrics" in str(e) or "pandas" in str(e):
            raise _dependency_error(str(e)) from None
        raise EvalDependencyError(
            f"the nuScenes tracking evaluation cannot be imported ({e}); install nuscenes-devkit==1.2.0 and "
            f"{EVAL_REQUIREMENTS}") from e
    return TrackingEval, config_factory


def check_eval_available() -> None:
    """Raise :class:`EvalDependencyError` now if the evaluation could not run later."""
    _import_tracking_eval()


def default_output_dir(results: str) -> str:
    """Where the evaluation of ``results`` writes by default: ``<results stem>_eval`` beside it."""
    results = os.path.abspath(os.fspath(results))
    stem = os.path.splitext(os.path.basename(results))[0]
    return os.path.join(os.path.dirname(results), stem + "_eval")


def evaluate_tracking(
    results: str,
    dataroot: str,
    version: str,
    split: str,
    output_dir: Optional[str] = None,
    *,
    verbose: bool = False,
    render_curves: bool = False,
    check: bool = True,
    data=None,
    workers: int = 1,
) -> Dict[str, Any]:
    """Score a tracking-submission file with the devkit's ``TrackingEval``.

    Args:
        results: the tracking JSON.
        dataroot, version, split: the dataset and split it was made for (named or custom).
        output_dir: where the devkit and this function write their files (default: a folder
            ``<results stem>_eval`` beside the results file).
        verbose: let the devkit print its progress and tables.
        render_curves: let the devkit draw its PDF curves (slow).
        check: validate the file first with :func:`nutrack.data.load_tracking_results`
            (exact sample set, fields, unique ids), raising ``SubmissionFormatError``.
        data: an already opened :class:`nutrack.data.NuScenesData` (saves a devkit load for
            the check).
        workers: processes evaluating the classes in parallel (the same metrics as one;
            :mod:`nutrack.eval_parallel`).

    Returns:
        the devkit's metrics summary (``metrics_summary.json``'s content: ``amota``,
        ``amotp``, ``mota``, ``ids``, ``frag``, ``recall``, ..., ``label_metrics`` per class),
        also written as ``metrics.json``.
    """
    results = os.path.abspath(os.fspath(results))
    if not os.path.isfile(results):
        raise FileNotFoundError(f"tracking results not found: {results}")
    output_dir = check_writable_dir(default_output_dir(results) if output_dir is None else output_dir,
                                    "the evaluation's output folder")
    TrackingEval, config_factory = _import_tracking_eval()
    if check:
        from nutrack.data import NuScenesData, load_tracking_results

        if data is None:
            data = NuScenesData(dataroot, version)
        load_tracking_results(results, data, split)
    elif not os.path.isdir(os.path.join(dataroot, version)):
        from nutrack.data.nuscenes_io import DatasetError

        raise DatasetError(f"no nuScenes version {version!r} under {dataroot}")
    os.makedirs(output_dir, exist_ok=True)
    cfg = config_factory("tracking_nips_2019")
    with contextlib.ExitStack() as quiet:
        if not verbose:
            from nutrack.eval_parallel import devkit_quiet

            quiet.enter_context(devkit_quiet())
        from nutrack.eval_merge import linear_merge

        quiet.enter_context(linear_merge())  # the devkit's per-scene merge without its quadratic step
        ev = TrackingEval(config=cfg, result_path=results, eval_set=split, output_dir=output_dir,
                          nusc_version=version, nusc_dataroot=dataroot, verbose=verbose)
        if workers > 1:  # the devkit's main() as it is, with its evaluate() spread over processes
            from nutrack.eval_parallel import evaluate_by_class

            ev.evaluate = functools.partial(evaluate_by_class, ev, workers)
        summary = ev.main(render_curves=render_curves)
    atomic_write_json(os.path.join(output_dir, "metrics.json"), _jsonable(summary), indent=True)
    return summary


def evaluate_detection(
    results: str,
    dataroot: str,
    version: str,
    split: str,
    output_dir: Optional[str] = None,
    *,
    verbose: bool = False,
    check: bool = True,
    data=None,
) -> Dict[str, Any]:
    """Score a detection-submission file with the devkit's ``DetectionEval`` and its
    ``detection_cvpr_2019`` configuration (nutrack computes none of the figures).

    Args:
        results: the detection JSON (the ten detection classes, attributes as the devkit reads them).
        dataroot, version, split: the dataset and the split the file was made for (the
            devkit's named splits).
        output_dir: where the devkit writes ``metrics_summary.json`` and
            ``metrics_details.json`` (default: ``<results stem>_eval`` beside the file).
        check: validate the file first with :func:`nutrack.data.load_detections` (exact
            sample set, fields, class names), raising ``SubmissionFormatError``.
        data: an already opened :class:`nutrack.data.NuScenesData` (its devkit tables are reused).

    Returns:
        the devkit's metrics summary: ``mean_ap``, ``nd_score``, ``tp_errors`` (mATE ...
        mAAE as ``trans_err`` ... ``attr_err``), ``label_aps`` and ``label_tp_errors`` per
        class; also written as ``metrics.json``.
    """
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    from nutrack.data import NuScenesData, load_detections

    results = os.path.abspath(os.fspath(results))
    if not os.path.isfile(results):
        raise FileNotFoundError(f"detection results not found: {results}")
    output_dir = check_writable_dir(default_output_dir(results) if output_dir is None else output_dir,
                                    "the evaluation's output folder")
    if data is None:
        data = NuScenesData(dataroot, version)
    if check:
        load_detections(results, data, split, tracking_only=False)
    os.makedirs(output_dir, exist_ok=True)
    with contextlib.ExitStack() as quiet:
        if not verbose:
            from nutrack.eval_parallel import devkit_quiet

            quiet.enter_context(devkit_quiet())
        ev = DetectionEval(data.nusc, config_factory("detection_cvpr_2019"), results, split, output_dir,
                           verbose=verbose)
        summary = ev.main(plot_examples=0, render_curves=False)
    atomic_write_json(os.path.join(output_dir, "metrics.json"), _jsonable(summary), indent=True)
    return summary


def format_detection_metrics(summary: Dict[str, Any]) -> str:
    """mAP, NDS, the mean TP errors and the per-class table (AP, ATE, ASE, AOE, AVE, AAE) as text."""
    tp = summary.get("tp_errors", {})
    head = [f"mAP {_fmt('', summary.get('mean_ap'))}", f"NDS {_fmt('', summary.get('nd_score'))}"]
    head += [f"m{name} {_fmt('', tp.get(e))}" for e, name in _TP_ERRORS.items()]
    lines = ["  ".join(head), "", f"{'class':<22}{'AP':>8}" + "".join(f"{n:>8}" for n in _TP_ERRORS.values())]
    aps, errs = summary.get("label_aps", {}), summary.get("label_tp_errors", {})
    for cls in aps:
        ap = sum(aps[cls].values()) / max(len(aps[cls]), 1)
        row = "".join(f"{_fmt('', errs.get(cls, {}).get(e)):>8}" for e in _TP_ERRORS)
        lines.append(f"{cls:<22}{_fmt('', ap):>8}{row}")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):  # DetectionEval keys its per-threshold APs by float distance
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item"):
        return _jsonable(obj.item())
    return obj


def _fmt(name: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if name in ("ids", "frag", "gt", "tp", "fp", "fn", "mt", "ml"):
        return str(int(v))
    return f"{v:.3f}"


def format_metrics(summary: Dict[str, Any]) -> str:
    """The headline metrics and the per-class table as text."""
    lines = ["  ".join(f"{m.upper()} {_fmt(m, summary.get(m))}" for m in HEADLINE)]
    per = summary.get("label_metrics", {})
    cols = [m for m in ("amota", "amotp", "recall", "mota", "ids", "frag", "gt", "tp", "fp", "fn") if m in per]
    classes = sorted(next(iter(per.values()), {}).keys()) if per else []
    if classes:
        lines.append("")
        lines.append("class       " + "".join(f"{c.upper():>8}" for c in cols))
        for cls in classes:
            lines.append(f"{cls:<12}" + "".join(f"{_fmt(c, per[c].get(cls)):>8}" for c in cols))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; a user mistake ends in one line and exit code 2 (:mod:`nutrack._cli`)."""
    return run_main(PROG, _main, argv)


def _main(argv: Optional[Sequence[str]]) -> int:
    p = ArgumentParser(prog=PROG,
                                description="Score a nuScenes tracking-submission JSON (with --detection: a "
                                            "detection-submission JSON) with the official devkit.")
    p.add_argument("--results", required=True, help="tracking results JSON (with --detection: detection results)")
    p.add_argument("--detection", action="store_true",
                   help="score a detection-submission JSON with the devkit's DetectionEval (detection_cvpr_2019)")
    p.add_argument("--dataroot", required=True)
    p.add_argument("--version", required=True, help="e.g. v1.0-mini, v1.0-trainval")
    p.add_argument("--split", required=True, help="e.g. mini_val, val, or a splits.json split")
    p.add_argument("--output-dir", default=None, help="default: <results stem>_eval beside the results")
    p.add_argument("--render-curves", action="store_true", help="draw the devkit's PDF curves")
    p.add_argument("--verbose", action="store_true", help="show the devkit's own output")
    p.add_argument("--workers", type=int, default=1,
                   help="processes evaluating the classes in parallel (default: 1; at most 7 are useful)")
    a = p.parse_args(argv)
    if not 1 <= a.workers <= 64:
        raise UserError(f"--workers must be in [1, 64], got {a.workers}")
    t0 = time.time()
    if not os.path.isfile(a.results):
        raise UserError(f"{'detection' if a.detection else 'tracking'} results not found: {a.results}")
    out = check_writable_dir(a.output_dir or default_output_dir(a.results), "--output-dir")
    if a.detection:
        summary = evaluate_detection(a.results, a.dataroot, a.version, a.split, out, verbose=a.verbose)
        print(format_detection_metrics(summary))
        print(f"\nmetrics written to {os.path.join(out, 'metrics.json')} ({time.time() - t0:.1f} s)")
        return 0
    summary = evaluate_tracking(a.results, a.dataroot, a.version, a.split, out,
                                verbose=a.verbose, render_curves=a.render_curves, workers=a.workers)
    print(format_metrics(summary))
    print(f"\nmetrics written to {os.path.join(out, 'metrics.json')} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
