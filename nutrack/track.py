"""Run a tracker on a nuScenes detection file and write the tracking submission.

    python -m nutrack.track --dataroot D --version V --split S --detections det.json \\
        --out tracks.json [--method centerpoint|filter|learned] [--checkpoint C] [--eval] \\
        [--score-threshold X] [--param NAME=VALUE ...]

With no ``--dataroot`` it runs on the embedded synthetic dataset (generated once and cached)
and its simulated detections of the chosen split (default: the val split). The detection file
is validated before any work; the output is written atomically; a progress bar runs over the
scenes; the tracker's frames per second are printed; ``--eval`` scores the result with the
devkit (``nutrack.eval``). See docs/tracking.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from nutrack._cli import ArgumentParser, UserError, check_writable_dir, check_writable_file, run_main

__all__ = ["main", "build_parser"]

PROG = "python -m nutrack.track"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Track objects through a nuScenes detection file and write the tracking-submission JSON. "
                    "Without --dataroot: the embedded synthetic dataset and its simulated detections.")
    p.add_argument("--dataroot", help="nuScenes folder holding <version>/ (default: the embedded synthetic dataset)")
    p.add_argument("--version", help="dataset version, e.g. v1.0-trainval (required with --dataroot)")
    p.add_argument("--split", help="split to track, e.g. val (required with --dataroot; default for the embedded "
                                   "dataset: its val split)")
    p.add_argument("--detections", help="detection-submission JSON of the split (required with --dataroot; default "
                                        "for the embedded dataset: its simulated detections)")
    p.add_argument("--out", help="tracking JSON to write (default: tracks_<method>_<split>.json)")
    p.add_argument("--method", default="filter", choices=("centerpoint", "filter", "learned"),
                   help="tracker (default: filter)")
    p.add_argument("--checkpoint", help="learned model checkpoint (--method learned)")
    p.add_argument("--device", help="torch device of the learned model: cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="centerpoint: drop detections below it (default: none, as published); filter/learned: "
                        "detections below it neither start tracks nor match in the first stage (default: the "
                        "per-class score_threshold parameter)")
    p.add_argument("--params", metavar="FILE",
                   help="start from the parameters of this params file (python -m nutrack.tune writes them; "
                        "filter and learned); --param overrides single values")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a tracker parameter (repeatable), e.g. max_age=4, match_threshold.pedestrian=-0.2 "
                        "or a comma-separated value per class; see docs/tracking.md")
    p.add_argument("--allow-missing", action="store_true",
                   help="treat samples of the split absent from the detection file as having no detections")
    p.add_argument("--eval", action="store_true", help="score the result with the devkit's TrackingEval")
    p.add_argument("--eval-dir", help="where --eval writes its files (default: <out stem>_eval beside --out)")
    p.add_argument("--backend", default="auto", choices=("auto", "cpu", "numba", "cuda"),
                   help="backend of nutrack.ops.pairwise_affinity (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line. A user mistake ends in one line on stderr and exit code 2, with no
    output written (see :mod:`nutrack._cli`)."""
    return run_main(PROG, _main, argv)


def _main(argv: Optional[Sequence[str]]) -> int:
    a = build_parser().parse_args(argv)
    _check_arguments(a)
    tracker = _make_tracker(a)
    dataroot, version, split, det_path = _resolve_inputs(a)
    out, eval_dir = _outputs(a, split)

    from nutrack.data import NuScenesData, load_detections, write_tracking_results
    from nutrack.tracking import track_scenes

    data = NuScenesData(dataroot, version)
    tokens = data.sample_tokens(split)
    t0 = time.perf_counter()
    dets = load_detections(det_path, data, split, allow_missing=a.allow_missing)
    load_s = time.perf_counter() - t0

    scene_names = data.split_scene_names(split)
    points = None
    if a.method == "learned":  # the scorer's points: as many sweeps as the model was trained with
        nsweeps = int(getattr(getattr(tracker, "scorer", None), "nsweeps", 1) or 1)
        points = lambda f: data.lidar_points(f, nsweeps=nsweeps)  # noqa: E731
    t0 = time.perf_counter()
    run = track_scenes(tracker, data.scenes(split, dets), progress=not a.quiet, points=points,
                       total=len(scene_names), desc=f"{a.method} {split}")
    wall = time.perf_counter() - t0
    meta = _tracking_meta(dets.meta)
    write_tracking_results(out, run.results, tokens, meta=meta, keep_top=True)
    n_boxes = sum(len(t) for t in run.results.values())
    print(f"{a.method}: {run.frames} frames of {run.scenes} scenes, {n_boxes} tracked boxes -> {out}")
    print(f"speed: {run.fps:,.0f} frames/s in the tracker ({run.seconds:.2f} s), "
          f"{run.frames / wall:,.0f} frames/s end to end ({wall:.2f} s; loading detections {load_s:.2f} s)")

    if a.eval:
        from nutrack.eval import evaluate_tracking, format_metrics

        summary = evaluate_tracking(out, dataroot, version, split, output_dir=eval_dir, data=data)
        print(format_metrics(summary))
    return 0


def _check_arguments(a: argparse.Namespace) -> None:
    """The checks that need no data; UserError on the first failing one."""
    if a.dataroot is not None:
        missing = [f"--{n}" for n in ("version", "split", "detections") if getattr(a, n) is None]
        if missing:
            raise UserError(f"--dataroot needs {', '.join(missing)} as well")
        if not os.path.isdir(a.dataroot):
            raise UserError(f"--dataroot {a.dataroot!r} is not a folder")
    if a.detections is not None and not os.path.isfile(a.detections):
        what = "is not a file" if os.path.exists(a.detections) else "does not exist"
        raise UserError(f"detection file {a.detections!r} {what}")
    for flag, value in (("--checkpoint", a.checkpoint), ("--device", a.device)):
        if value is not None and a.method != "learned":
            raise UserError(f"{flag} is only used by --method learned")
    if a.score_threshold is not None and not 0.0 <= a.score_threshold <= 1.0:
        raise UserError(f"--score-threshold must be in [0, 1], got {a.score_threshold}")
    if a.backend in ("cpu", "cuda"):
        _check_backend(a.backend)
    if a.method == "learned":
        _check_device(a.device or "cpu")
    # Outputs before any work (the embedded dataset may even be generated first): a typo must
    # not cost a whole split's tracking. The default names are checked in _outputs.
    if a.out is not None:
        check_writable_file(a.out, "--out")
    if a.eval_dir is not None:
        check_writable_dir(a.eval_dir, "--eval-dir")
    if a.eval:
        from nutrack.eval import check_eval_available

        check_eval_available()


def _outputs(a: argparse.Namespace, split: str):
    """(tracking file, evaluation folder or None), defaults filled in and checked writable."""
    out = a.out or f"tracks_{a.method}_{split}.json"
    check_writable_file(out, "--out")
    if not a.eval:
        return out, None
    from nutrack.eval import default_output_dir

    eval_dir = a.eval_dir or default_output_dir(out)
    check_writable_dir(eval_dir, "--eval-dir")
    return out, eval_dir


def _check_backend(backend: str) -> None:
    import nutrack.ops as ops

    if backend == "cpu" and not ops.has_cpu():
        raise UserError(f"--backend cpu: the C++ extension is unavailable ({ops.why_unavailable()})")
    if backend == "cuda":
        try:
            import torch

            usable = torch.cuda.is_available()
        except ImportError:
            usable = False
        if not (usable and ops.has_cuda()):
            raise UserError("--backend cuda needs torch with a visible CUDA GPU and nutrack built with CUDA")


def _check_device(device: str) -> None:
    """``--device`` names a torch device this machine has (before the checkpoint is loaded)."""
    try:
        import torch
    except ImportError:
        return  # make_tracker says that the learned method needs torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: the learned tracker runs on cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: this torch {torch.__version__} sees no CUDA GPU "
                            f"(a CPU-only build, or no GPU visible); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UserError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")


def _make_tracker(a: argparse.Namespace):
    from nutrack.tracking import LearnedModelUnavailable, make_tracker, parse_overrides

    try:
        return make_tracker(a.method, overrides=parse_overrides(a.param), score_threshold=a.score_threshold,
                            checkpoint=a.checkpoint, device=a.device or "cpu", backend=a.backend,
                            params=a.params)
    except UserError:
        raise
    except (ValueError, LearnedModelUnavailable) as e:  # the arguments' fault, named by make_tracker
        raise UserError(str(e)) from e


def _resolve_inputs(a: argparse.Namespace):
    """(dataroot, version, split, detection file): the given ones, or the embedded dataset's."""
    if a.dataroot is not None:
        return a.dataroot, a.version, a.split, a.detections
    from nutrack.data.synth import default_dataset

    ds = default_dataset(progress=not a.quiet)
    if a.version is not None and a.version != ds.version:
        raise UserError(f"the embedded dataset is {ds.version}; --version {a.version} needs --dataroot")
    split = a.split or ds.val_split
    det_path = a.detections or ds.detections.get(split)
    if det_path is None:
        raise UserError(f"the embedded dataset has no simulated detections for split {split!r} "
                        f"(it has {', '.join(sorted(ds.detections))}); pass --detections")
    return ds.dataroot, ds.version, split, det_path


def _tracking_meta(meta) -> Optional[dict]:
    """The detection file's five sensor flags for the tracking file's meta (None: the default).
    Only those: anything else an exporter put there stays behind (it may not even serialise)."""
    keys = ("use_camera", "use_lidar", "use_radar", "use_map", "use_external")
    if isinstance(meta, dict) and all(isinstance(meta.get(k), bool) for k in keys):
        return {k: meta[k] for k in keys}
    return None


if __name__ == "__main__":
    sys.exit(main())
