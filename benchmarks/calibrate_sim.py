"""The detection simulator's calibration loop: generate (once) the embedded dataset for some
generator seeds, simulate its val detections with given :class:`DetectorNoise` overrides, run
trackers on them, and print the devkit's figures (DetectionEval mAP / NDS / TP errors per class,
TrackingEval AMOTA per tracker), with mean and spread over the seeds.

    python benchmarks/calibrate_sim.py [--seeds 0 1 2] [--trackers centerpoint filter]
        [--set p_max=0.9,0.8,... --set fp_rate=20 ...] [--json out.json]
        [--version v1.0-mini --train-scenes 0 --val-scenes 2 --keyframes 40] [--work DIR]

The datasets (lidar and tables) are cached under ``--work`` keyed on the SynthConfig and the
world-side sources, so that editing the simulator or its noise does not regenerate them. Not
a test: it takes about a minute per seed and tracker (TrackingEval dominates).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time

import numpy as np

_WORLD_SOURCES = ("world.py", "scenes.py", "lidar.py", "raycast.py", "tables.py", "constants.py")


def _dataset(work: str, cfg) -> str:
    """The dataroot of ``cfg``, generated on first use."""
    from nutrack.data.synth import generate_dataset
    import nutrack.data.synth as synth

    h = hashlib.md5(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    for f in _WORLD_SOURCES:
        with open(os.path.join(os.path.dirname(synth.__file__), f), "rb") as fh:
            h.update(fh.read())
    root = os.path.join(work, "data-" + h.hexdigest()[:12])
    if not os.path.isfile(os.path.join(root, cfg.version, "sample.json")):
        generate_dataset(root, cfg, progress=False)
    return root


def _parse_overrides(items):
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        parts = [int(v) if v.lstrip("-").isdigit() else float(v) for v in value.split(",")]
        out[name] = tuple(parts) if len(parts) > 1 else parts[0]
    return out


def _one_seed(args, noise, seed: int) -> dict:
    from nutrack.data import NuScenesData, load_detections, write_detections, write_tracking_results
    from nutrack.data.synth import SynthConfig, simulate_detections
    from nutrack.eval import evaluate_detection, evaluate_tracking
    from nutrack.tracking import make_tracker, track_scenes

    cfg = SynthConfig(version=args.version, train_scenes=args.train_scenes, val_scenes=args.val_scenes,
                      keyframes=args.keyframes, seed=seed)
    root = _dataset(args.work, cfg)
    split = cfg.splits()[1]
    data = NuScenesData(root, cfg.version)
    out = os.path.join(args.work, f"run-{os.path.basename(root)}-{os.getpid()}")
    os.makedirs(out, exist_ok=True)
    det_path = os.path.join(out, "detections.json")
    write_detections(det_path, simulate_detections(data, split, noise, seed=seed), data.sample_tokens(split))
    det = evaluate_detection(det_path, root, cfg.version, split, os.path.join(out, "det_eval"), data=data)
    rec = {"seed": seed, "mAP": det["mean_ap"], "NDS": det["nd_score"],
           **{k: det["tp_errors"][k] for k in det["tp_errors"]},
           "class_ap": {c: float(np.mean(list(v.values()))) for c, v in det["label_aps"].items()},
           "class_tp": det["label_tp_errors"]}
    dets = load_detections(det_path, data, split)
    for spec in args.trackers:  # "method" or "method:params.json" (python -m nutrack.tune's output)
        method, _, params = spec.partition(":")
        run = track_scenes(make_tracker(method, params=params or None), data.scenes(split, dets), progress=False)
        method = _label(spec)
        tpath = os.path.join(out, f"tracks_{method}.json")
        write_tracking_results(tpath, run.results, data.sample_tokens(split), keep_top=True)
        summ = evaluate_tracking(tpath, root, cfg.version, split, os.path.join(out, f"eval_{method}"), data=data,
                                 workers=args.workers)
        rec[f"amota_{method}"] = summ["amota"]
        rec[f"ids_{method}"] = summ["ids"]
        rec[f"class_amota_{method}"] = summ["label_metrics"]["amota"]
    return rec


def _label(spec: str) -> str:
    method, _, params = spec.partition(":")
    return method if not params else f"{method}+{os.path.splitext(os.path.basename(params))[0]}"


def _mean_spread(values):
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return "nan"
    return f"{v.mean():.3f}" + (f" +-{v.std(ddof=1):.3f}" if len(v) > 1 else "")


def _report(recs, trackers) -> str:
    lines = []
    keys = ["mAP", "NDS", "trans_err", "scale_err", "orient_err", "vel_err", "attr_err"]
    keys += [f"amota_{m}" for m in trackers] + [f"ids_{m}" for m in trackers]
    for k in keys:
        lines.append(f"{k:<20}{_mean_spread([r[k] for r in recs]):>16}   " +
                     " ".join(f"{r[k]:.3f}" for r in recs))
    classes = list(recs[0]["class_ap"])
    cols = ["AP", "trans_err", "scale_err", "orient_err", "vel_err", "attr_err"] + [f"amota_{m}" for m in trackers]
    lines.append("")
    lines.append(f"{'class':<22}" + "".join(f"{c[:10]:>18}" for c in cols))
    for c in classes:
        cells = [_mean_spread([r["class_ap"][c] for r in recs])]
        cells += [_mean_spread([r["class_tp"][c][e] for r in recs]) for e in cols[1:6]]
        cells += [_mean_spread([r[f"class_amota_{m}"].get(c) for r in recs]) for m in trackers]
        lines.append(f"{c:<22}" + "".join(f"{x:>18}" for x in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--trackers", nargs="*", default=["centerpoint"],
                   help="methods, each optionally with a params file: filter:params.json")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a DetectorNoise override")
    p.add_argument("--version", default=None)
    p.add_argument("--train-scenes", type=int, default=0)
    p.add_argument("--val-scenes", type=int, default=None)
    p.add_argument("--keyframes", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--work", default=os.path.join(os.environ.get("NUTRACK_CACHE", "/tmp"), "calibrate"))
    p.add_argument("--json", help="write the per-seed records here")
    a = p.parse_args(argv)
    from nutrack.data.synth import DetectorNoise, SynthConfig

    d = SynthConfig()
    a.version = a.version or d.version
    a.val_scenes = d.val_scenes if a.val_scenes is None else a.val_scenes
    a.keyframes = a.keyframes or d.keyframes
    noise = dataclasses.replace(DetectorNoise(), **_parse_overrides(a.set))
    t0 = time.time()
    recs = [_one_seed(a, noise, s) for s in a.seeds]
    print(_report(recs, [_label(t) for t in a.trackers]))
    print(f"\n{len(a.seeds)} seeds in {time.time() - t0:.0f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(recs, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
