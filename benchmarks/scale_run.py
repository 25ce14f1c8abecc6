"""The scale run (issue 12, item 4): how time and memory grow with the number of scenes.

    python benchmarks/scale_run.py --sizes 10 40 150 --out DIR

For each size N it generates a synthetic ``v1.0-trainval`` dataset of N scenes (split between
train and val as nuScenes' 700/150), then measures, each stage in a child process of its own:

- ``generate``: the dataset and its simulated detection files (:func:`nutrack.data.synth.build`)
- ``load``: :class:`nutrack.data.NuScenesData` (the devkit's tables and nutrack's indexes)
- ``track``: the filter tracker over the val split, detections read and tracking file written
- ``train``: training data preparation (:func:`nutrack.train.inputs.load_inputs`: labels, point
  gathering, frame pairs) and one training epoch (:meth:`Trainer.train_epoch`), CPU
- ``eval``: the devkit's tracking evaluation of that file (ground truth loaded once, then
  :meth:`nutrack.tune.devkit.DevkitSession.score`)

Time is the stage's own work, measured inside the child (interpreter start and imports
excluded); memory is the child's peak RSS from ``os.wait4`` (the kernel's maximum over the
child and the children it waited for, so the forked evaluation workers count as the largest of
them, not their sum). Each record also holds the load average around the stage: the machine
this was written for is shared, so absolute times are noisy; the growth exponents (slopes of
log time against log scenes, within one run) are the comparable figures.

``--nproc 2`` runs the train stage under ``torchrun --nproc-per-node 2`` (gloo) as well: frame
pairs per second of an epoch, data preparation included (issue 12, item 5).

Datasets are deleted after measuring unless ``--keep``. ``--report [DIR ...]`` (re)writes the
table and plot into ``--out`` from those folders' results.json alone. ``--merge-bench`` times
the devkit's merge of per-scene event tables against :mod:`nutrack.eval_merge`'s.
``--frames-bench --sizes N --nproc 2`` times the train stage with a cold and then a warm frame
cache (:mod:`nutrack.model.frame_cache`). ``--detections-bench BOXES [--before-src DIR]``
measures :func:`nutrack.data.load_detections`' peak memory and time on a file of BOXES boxes at
500 a sample, read piecewise and whole. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VERSION = "v1.0-trainval"
STAGES = ("generate", "load", "track", "train", "eval")
FULL = {"scenes": 850, "keyframes": 34149, "annotations": 1.4e6, "sweeps": 4.0e5}


# -- stages (run in a child process: ``scale_run.py --stage NAME --spec JSON``) ---------------
def _self_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Clock:
    """Wall and CPU seconds since it was made; CPU is this process's plus its waited-for
    children's (the evaluation's forked workers). On a shared machine the CPU seconds are the
    steadier measure of the work: wall time is mostly waiting for a core."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), _cpu()

    def since(self):
        return time.perf_counter() - self.wall, _cpu() - self.cpu


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _stage_generate(spec: Dict[str, Any]) -> Dict[str, Any]:
    from nutrack.data.synth import SynthConfig, build

    cfg = SynthConfig(version=VERSION, train_scenes=spec["train"], val_scenes=spec["val"],
                      keyframes=spec["keyframes"], sweeps_per_keyframe=spec["sweeps"],
                      azimuth_steps=spec["azimuth_steps"], seed=spec["seed"])
    clock = _Clock()
    build(spec["folder"], cfg, progress=False)
    seconds, cpu = clock.since()
    with open(os.path.join(spec["folder"], "COMPLETE.json")) as f:
        info = json.load(f)
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(spec["folder"]) for n in ns)
    return {"seconds": seconds, "stage_cpu_s": cpu, "stats": info["stats"], "bytes": size}


def _open(spec):
    from nutrack.data import NuScenesData

    return NuScenesData(os.path.join(spec["folder"], "nuscenes"), VERSION)


def _stage_load(spec: Dict[str, Any]) -> Dict[str, Any]:
    import nuscenes.nuscenes  # noqa: F401  (the devkit's import is a fixed cost, not the load's)

    clock = _Clock()
    data = _open(spec)
    n = {s: len(data.sample_tokens(s)) for s in ("train", "val")}
    seconds, cpu = clock.since()
    out = {"seconds": seconds, "stage_cpu_s": cpu, "samples": n}
    out.update(sample_data=len(data.nusc.sample_data), annotations=len(data.nusc.sample_annotation))
    return out


def _stage_track(spec: Dict[str, Any]) -> Dict[str, Any]:
    from nutrack.data import load_detections, write_tracking_results
    from nutrack.tracking import make_tracker, track_scenes

    data = _open(spec)
    rss_loaded = _self_rss_mib()
    det_path = os.path.join(spec["folder"], "detections", "val.json")
    clock = _Clock()
    dets = load_detections(det_path, data, "val")
    t_read = clock.since()[0]
    tracker = make_tracker("filter")
    tracker.warm_up()  # numba compilation: a fixed cost, outside the timed part
    tokens = data.sample_tokens("val")
    t1 = time.perf_counter()
    run = track_scenes(tracker, data.scenes("val", dets), progress=False, warm_up=False)
    t_track = time.perf_counter() - t1
    write_tracking_results(spec["tracks"], run.results, tokens, keep_top=True)
    seconds, cpu = clock.since()
    return {"seconds": seconds, "stage_cpu_s": cpu, "read_detections_s": t_read, "tracking_s": t_track,
            "tracker_only_s": run.seconds, "frames": run.frames, "rss_after_load_mib": rss_loaded}


def _stage_train(spec: Dict[str, Any]) -> Dict[str, Any]:
    from nutrack.model.threads import torch_threads
    from nutrack.train.checkpoints import seed_everything
    from nutrack.train.config import TrainConfig
    from nutrack.train.dist import barrier, init_distributed, shutdown
    from nutrack.train.inputs import load_inputs
    from nutrack.train.trainer import Trainer

    dataroot = os.path.join(spec["folder"], "nuscenes")
    det = os.path.join(spec["folder"], "detections")
    config = TrainConfig(dataroot=dataroot, version=VERSION, train_split="train", val_split="val",
                         train_detections=os.path.join(det, "train.json"),
                         val_detections=os.path.join(det, "val.json"), epochs=1, device="cpu",
                         output=spec["run_dir"], quiet=True, eval_every=0, no_baselines=True,
                         checkpoint_every=0, world_size=int(os.environ.get("WORLD_SIZE", "1")),
                         frame_cache=spec.get("frame_cache", "off"))
    config.validate()
    with torch_threads(1):
        dist, device = init_distributed("cpu")
        try:
            seed_everything(config.seed)
            barrier(dist)
            clock = _Clock()
            inputs = load_inputs(config, progress=False, dist=dist)
            prep, prep_cpu = clock.since()
            rss_prep = _self_rss_mib()
            trainer = Trainer(config, inputs, dist, device)
            trainer._start()
            trainer.model.train()
            barrier(dist)
            c_epoch = _cpu()
            pairs, seconds = trainer.train_epoch()
            epoch_cpu = _cpu() - c_epoch
            barrier(dist)
            total, cpu = clock.since()
        finally:
            shutdown()
    out = {"seconds": total, "stage_cpu_s": cpu, "prep_s": prep, "prep_cpu_s": prep_cpu, "epoch_s": seconds,
           "epoch_cpu_s": epoch_cpu, "pairs": int(pairs),
           "train_pairs": int(len(inputs.train_pairs)), "pairs_per_s_epoch": pairs / max(seconds, 1e-9),
           "pairs_per_s_with_prep": pairs / max(total, 1e-9), "rss_after_prep_mib": rss_prep,
           "world": dist.world, "rank": dist.rank}
    if dist.rank != 0:
        out["not_rank0"] = True
    return out


def _time_merges(log_path: str) -> bool:
    """Log the CPU seconds and size of every merge of per-scene event tables (in this process
    and the forked workers) to ``log_path``; False where nutrack has no linear merge."""
    try:
        import nutrack.eval_merge as em
    except ImportError:
        return False
    inner = em.merge_event_dataframes

    def timed(dfs, *args, **kwargs):
        dfs = list(dfs)
        c0 = time.process_time()
        r = inner(dfs, *args, **kwargs)
        with open(log_path, "a") as f:
            f.write(f"{time.process_time() - c0} {len(dfs)} {len(r[0] if isinstance(r, tuple) else r)}\n")
        return r

    em.merge_event_dataframes = timed  # what linear_merge installs
    return True


def _stage_eval(spec: Dict[str, Any]) -> Dict[str, Any]:
    from nutrack.tune.devkit import DevkitSession

    merge_log = spec["tracks"] + ".merges"
    linear = _time_merges(merge_log)
    clock = _Clock()
    session = DevkitSession(os.path.join(spec["folder"], "nuscenes"), VERSION, "val")
    t_gt = clock.since()[0]
    rss_gt = _self_rss_mib()
    t1 = time.perf_counter()
    summary = session.score(spec["tracks"], workers=spec["eval_workers"])
    t_score = time.perf_counter() - t1
    seconds, cpu = clock.since()
    merges = []
    if os.path.exists(merge_log):
        with open(merge_log) as f:
            merges = [[float(x) for x in line.split()] for line in f if line.strip()]
        os.unlink(merge_log)
    return {"linear_merge": linear, "merge_calls": len(merges), "merge_cpu_s": sum(m[0] for m in merges),
            "merge_max_rows": max((m[2] for m in merges), default=0),
            "seconds": seconds, "stage_cpu_s": cpu, "gt_load_s": t_gt, "score_s": t_score, "amota": summary["amota"],
            "workers": spec["eval_workers"], "rss_after_gt_mib": rss_gt}


_STAGE_FUNCS = {"generate": _stage_generate, "load": _stage_load, "track": _stage_track, "train": _stage_train,
                "eval": _stage_eval}


def _child_main(stage: str, spec_json: str, result_path: str) -> int:
    spec = json.loads(spec_json)
    out = _STAGE_FUNCS[stage](spec)
    if out.pop("not_rank0", False):
        return 0
    out["self_peak_rss_mib"] = _self_rss_mib()
    with open(result_path, "w") as f:
        json.dump(out, f)
    return 0


# -- the parent: run the stages, record, report -----------------------------------------------
def _loadavg() -> List[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def _run_child(stage: str, spec: Dict[str, Any], nproc: int = 1) -> Dict[str, Any]:
    fd, result_path = tempfile.mkstemp(prefix=f"scale-{stage}-", suffix=".json")
    os.close(fd)
    me = os.path.abspath(__file__)
    args = [me, "--stage", stage, "--spec", json.dumps(spec), "--result", result_path]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] + args
    else:
        cmd = [sys.executable] + args
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load0, t0 = _loadavg(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            raise RuntimeError(f"stage {stage} of {spec['scenes']} scenes failed (exit {proc.returncode})")
        with open(result_path) as f:
            out = json.load(f)
    finally:
        os.unlink(result_path)
    out.update(stage=stage, scenes=spec["scenes"], nproc=nproc, process_wall_s=wall,
               peak_rss_mib=ru.ru_maxrss / 1024.0, process_cpu_s=ru.ru_utime + ru.ru_stime,
               loadavg_before=load0, loadavg_after=_loadavg())
    return out


def _split(n: int):
    val = max(1, round(n * 150 / 850))
    return n - val, val


def frames_bench(a: argparse.Namespace) -> None:
    """Item 5: the train stage with a cold and then a warm frame cache (nutrack.model.frame_cache),
    with 1 and each ``--nproc`` processes, on one dataset of ``--sizes[0]`` scenes (generated
    into ``--data-dir`` unless already there); a markdown table on stdout."""
    n = a.sizes[0]
    train, val = _split(n)
    folder = os.path.join(a.data_dir or a.out, f"data-{n}")
    spec = dict(scenes=n, train=train, val=val, keyframes=a.keyframes, sweeps=a.sweeps,
                azimuth_steps=a.azimuth_steps, seed=a.seed, folder=folder)
    if not os.path.exists(os.path.join(folder, "COMPLETE.json")):
        _run_child("generate", spec)
    rows = []
    for nproc in [1] + [p for p in a.nproc if p > 1]:
        cache = os.path.join(a.out, f"frames-np{nproc}")
        shutil.rmtree(cache, ignore_errors=True)
        for state in ("cold", "warm"):
            spec.update(frame_cache=cache, run_dir=os.path.join(a.out, f"run-np{nproc}-{state}"))
            r = _run_child("train", spec, nproc)
            shutil.rmtree(spec["run_dir"], ignore_errors=True)
            rows.append(f"| {nproc} | {state} | {r['train_pairs']} | {r['prep_s']:.1f} / {r['prep_cpu_s']:.1f} | "
                        f"{r['epoch_s']:.1f} / {r['epoch_cpu_s']:.1f} | {r['pairs_per_s_epoch']:.0f} | "
                        f"{r['pairs_per_s_with_prep']:.0f} | {r['loadavg_before'][0]:.2f} |")
    print(f"{n} scenes ({train} train + {val} val), {a.keyframes} keyframes, {a.sweeps} sweep(s), "
          f"{a.azimuth_steps} azimuth steps")
    print("| processes | frame cache | frame pairs | prep wall / CPU s (rank 0) | epoch wall / CPU s (rank 0) "
          "| pairs/s, epoch | pairs/s, prep + epoch | load before |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


def measure(a: argparse.Namespace) -> None:
    os.makedirs(a.out, exist_ok=True)
    results_path = os.path.join(a.out, "results.json")
    records = _read(results_path)
    data_root = a.data_dir or a.out
    for n in a.sizes:
        train, val = _split(n)
        folder = os.path.join(data_root, f"data-{n}")
        spec = dict(scenes=n, train=train, val=val, keyframes=a.keyframes, sweeps=a.sweeps,
                    azimuth_steps=a.azimuth_steps, seed=a.seed, folder=folder,
                    tracks=os.path.join(a.out, f"tracks-{n}.json"), run_dir=os.path.join(a.out, f"run-{n}"),
                    eval_workers=a.eval_workers)
        if os.path.exists(folder) and "generate" in a.stages:
            shutil.rmtree(folder)
        try:
            for stage in a.stages:
                for nproc in ([1] + [p for p in a.nproc if p > 1]) if stage == "train" else [1]:
                    if nproc > 1:
                        spec["run_dir"] = os.path.join(a.out, f"run-{n}-np{nproc}")
                    rec = _run_child(stage, spec, nproc)
                    rec["config"] = {k: spec[k] for k in ("train", "val", "keyframes", "sweeps", "azimuth_steps")}
                    records = [r for r in records if (r["stage"], r["scenes"], r.get("nproc", 1)) !=
                               (stage, n, nproc)] + [rec]
                    _write(results_path, records)
                    print(f"[{n} scenes] {stage} (x{nproc}): {rec['seconds']:.1f} s, peak RSS "
                          f"{rec['peak_rss_mib']:.0f} MiB, load {rec['loadavg_before'][0]:.1f}", flush=True)
        finally:
            if not a.keep:
                shutil.rmtree(folder, ignore_errors=True)
            for p in (spec["run_dir"], os.path.join(a.out, f"run-{n}")):
                shutil.rmtree(p, ignore_errors=True)
    report(a.out)


def _read(path: str) -> List[Dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _write(path: str, records: List[Dict[str, Any]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=1)
    os.replace(tmp, path)


def _fit(xs, ys):
    """Least-squares slope and intercept of log y against log x."""
    import numpy as np

    if len(xs) < 2:
        return float("nan"), float("nan")
    k, c = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(k), float(c)


# the timed parts reported per stage: (label, stage, wall key, CPU key)
_SERIES = [("generation (+ simulated detections)", "generate", "seconds", "stage_cpu_s"),
           ("NuScenesData load", "load", "seconds", "stage_cpu_s"),
           ("tracking val (filter; read + track + write)", "track", "seconds", "stage_cpu_s"),
           ("training data preparation", "train", "prep_s", "prep_cpu_s"),
           ("one training epoch", "train", "epoch_s", "epoch_cpu_s"),
           ("evaluation (devkit, GT load + score)", "eval", "seconds", "stage_cpu_s")]
_MEM = {"generate": "generation", "load": "NuScenesData load", "track": "tracking val",
        "train": "training (prep + epoch)", "eval": "evaluation"}


def _records(sources: List[str]) -> Dict[Any, Dict[str, Any]]:
    """(stage, scenes, nproc) -> record, over the results of ``sources`` (later ones win, and a
    record with the stage's own CPU time wins over one without)."""
    by: Dict[Any, Dict[str, Any]] = {}
    for src in sources:
        for r in _read(os.path.join(src, "results.json")):
            key = (r["stage"], r["scenes"], r.get("nproc", 1))
            if key in by and "stage_cpu_s" in by[key] and "stage_cpu_s" not in r:
                continue
            by[key] = r
    return by


def report(out: str, sources: Optional[List[str]] = None) -> str:
    """The markdown table (``out/table.md``) and the plot (``out/scale_time.png``) of the
    results in ``sources`` (default: ``out``)."""
    allrec = _records(sources or [out])
    by = {(s, n): r for (s, n, p), r in allrec.items() if p == 1}
    sizes = sorted({n for _, n in by})
    head = " | ".join(f"{n} scenes" for n in sizes)
    lines = [f"| stage: wall s / CPU s | {head} | exponent wall / CPU (all sizes) | CPU exponent, two largest "
             f"| 850 scenes, CPU s (extrapolated) |",
             "| --- | " + " | ".join("---" for _ in sizes) + " | --- | --- | --- |"]
    fits = {}
    for label, stage, wkey, ckey in _SERIES:
        have = [n for n in sizes if (stage, n) in by and ckey in by[(stage, n)]]
        walls = [by[(stage, n)][wkey] for n in have]
        cpus = [by[(stage, n)][ckey] for n in have]
        kw, _ = _fit(have, walls)
        kc, cc = _fit(have, cpus)
        k2, c2 = _fit(have[-2:], cpus[-2:])
        fits[label] = (list(zip(have, cpus)), kc, cc)
        # extrapolated with the local slope of the two largest sizes (at least 1: a fixed cost
        # seen at small sizes must not make the extrapolation sub-linear)
        k_ex = max(k2, 1.0) if not math.isnan(k2) else float("nan")
        full = cpus[-1] * (FULL["scenes"] / have[-1]) ** k_ex if have else float("nan")
        cells = []
        for n in sizes:
            r = by.get((stage, n))
            cells.append(f"{r[wkey]:.1f} / {r[ckey]:.1f}" if r is not None and ckey in r else
                         (f"{r[wkey]:.1f} / -" if r is not None else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {kw:.2f} / {kc:.2f} | {k2:.2f} | {_human_s(full)} |")
    lines.append("")
    lines.append("| peak RSS (MiB) | " + head + " | MiB per scene (linear fit) | 850 scenes (extrapolated) |")
    lines.append("| --- | " + " | ".join("---" for _ in sizes) + " | --- | --- |")
    for stage, label in _MEM.items():
        have = [n for n in sizes if (stage, n) in by]
        rss = [by[(stage, n)]["peak_rss_mib"] for n in have]
        if len(have) >= 2:
            import numpy as np

            b, a0 = np.polyfit(have, rss, 1)
            full = f"{(a0 + b * FULL['scenes']) / 1024:.1f} GiB"
            per = f"{b:.2f}"
        else:
            full = per = ""
        cells = [f"{by[(stage, n)]['peak_rss_mib']:.0f}" if (stage, n) in by else "" for n in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {per} | {full} |")
    multi = sorted((n, p) for (s, n, p) in allrec if s == "train")
    if any(p > 1 for _, p in multi):
        lines.append("")
        lines.append("| training, frame pairs/s | processes | frame pairs | prep wall / CPU s (rank 0) | epoch wall / "
                     "CPU s (rank 0) | pairs/s wall, epoch | pairs/s wall, prep + epoch | pairs per CPU s of rank 0, "
                     "prep + epoch |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, p in multi:
            r = allrec[("train", n, p)]
            cpu = (f"{r['pairs'] / (r['prep_cpu_s'] + r['epoch_cpu_s']):.0f}" if "prep_cpu_s" in r else "")
            cpu_cells = (f"{r['prep_s']:.1f} / {r['prep_cpu_s']:.1f} | {r['epoch_s']:.1f} / {r['epoch_cpu_s']:.1f}"
                         if "prep_cpu_s" in r else f"{r['prep_s']:.1f} / - | {r['epoch_s']:.1f} / -")
            lines.append(f"| {n} scenes | {p} | {r['pairs']} | {cpu_cells} | {r['pairs_per_s_epoch']:.0f} | "
                         f"{r['pairs_per_s_with_prep']:.0f} | {cpu} |")
    loads = [f"{n}: " + ", ".join(f"{by[(s, n)]['loadavg_before'][0]:.1f}" for s in STAGES if (s, n) in by)
             for n in sizes]
    lines.append("")
    lines.append("Load average (1 min) before each stage, per size: " + "; ".join(loads) + ".")
    table = "\n".join(lines)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table + "\n")
    _plot(fits, os.path.join(out, "scale_time.png"))
    print(table)
    return table


def _human_s(s: float) -> str:
    if math.isnan(s):
        return ""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _plot(fits, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for label, (pts, k, c) in fits.items():
        if not pts:
            continue
        xs, ys = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
        line, = ax.plot(xs, ys, "o", label=f"{label} (n^{k:.2f})")
        if not math.isnan(k):
            xx = np.geomspace(xs.min(), FULL["scenes"], 50)
            ax.plot(xx, np.exp(c) * xx ** k, "-", color=line.get_color(), alpha=0.6)
    ax.axvline(FULL["scenes"], color="grey", ls=":", lw=1)
    ax.text(FULL["scenes"], ax.get_ylim()[0], " 850", color="grey", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("scenes (40 keyframes each)")
    ax.set_ylabel("CPU seconds of the stage")
    ax.set_title("nutrack stages vs dataset size (measured points, fitted power law)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def merge_bench(sizes=(27, 150, 300)) -> None:
    """CPU seconds of one merge of per-scene event tables, the devkit's against
    :func:`nutrack.eval_merge.merge_event_dataframes`, for ``sizes`` scenes of 40 frames x 30
    objects x 30 hypotheses (~4,700 events a scene, like a car class of the realistic results)."""
    import numpy as np
    import pandas as pd
    from nuscenes.eval.tracking.mot import MOTAccumulatorCustom

    from nutrack.eval_merge import merge_event_dataframes

    rng = np.random.default_rng(0)
    scenes = []
    for _ in range(20):
        acc = MOTAccumulatorCustom()
        for f in range(40):
            d = np.where(rng.uniform(size=(30, 30)) < 0.05, rng.uniform(size=(30, 30)), np.nan)
            acc.update([f"o{i}" for i in range(30)], [f"h{i}" for i in range(30)], d, frameid=f)
        scenes.append(acc)
    for n in sizes:
        accs = [scenes[i % len(scenes)] for i in range(n)]
        c0 = time.process_time()
        want = MOTAccumulatorCustom.merge_event_dataframes(accs)
        c1 = time.process_time()
        got = merge_event_dataframes(accs)
        c2 = time.process_time()
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        print(f"{n} scenes ({len(want)} events): devkit {c1 - c0:.2f} s CPU, linear {c2 - c1:.2f} s CPU", flush=True)


# -- --detections-bench: reading a large detection file ---------------------------------------
def _write_detection_file(path: str, boxes: int, per_sample: int = 500, seed: int = 0) -> List[str]:
    """A detection file of ``boxes`` boxes, ``per_sample`` a sample, written a sample at a time
    (the records of nutrack's writer, :func:`nutrack.data.write_detections`); its tokens."""
    import numpy as np

    from nutrack.data import Detections
    from nutrack.data.detections import DEFAULT_META
    from nutrack.data.writers import _box_records

    rng = np.random.default_rng(seed)
    tokens = [f"{i:032x}" for i in range(math.ceil(boxes / per_sample))]
    with open(path, "w") as f:
        f.write('{"meta": %s, "results": {' % json.dumps(DEFAULT_META))
        for i, token in enumerate(tokens):
            n = min(per_sample, boxes - i * per_sample)
            b = np.column_stack([rng.uniform(-1000, 1000, (n, 3)), rng.uniform(0.5, 5, (n, 3)),
                                 rng.uniform(-3, 3, n)])
            # CenterPoint's long tail: most of the 500 boxes a sample are low-score false positives
            det = Detections(b, rng.normal(0, 3, (n, 2)), 0.1 + 0.9 * rng.uniform(size=n) ** 4, np.arange(n) % 7)
            names = ["car", "truck", "bus", "trailer", "pedestrian", "motorcycle", "bicycle"]
            records = _box_records(token, det.boxes, det.velocities,
                                   detection_name=[names[c] for c in det.classes.tolist()],
                                   detection_score=np.round(det.scores.astype(np.float64), 6).tolist(),
                                   attribute_name=["vehicle.moving"] * n)
            f.write(("" if i == 0 else ", ") + json.dumps(token) + ": " + json.dumps(records))
        f.write("}}")
    return tokens


# Run in a fresh interpreter: peak RSS (VmHWM) and time of one load_detections call.
_LOAD_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import nutrack.data.detections as D
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024.0
if sys.argv[3] == "whole":
    D.PIECEWISE_MIN_BYTES = float("inf")
if sys.argv[3] == "piecewise-numba-loaded":  # numba and the scan's kernel loaded before, not counted
    import io
    from nutrack.data.jsonfile import scan_events
    scan_events(io.BytesIO(b"{}"), 2)
tokens = json.load(open(sys.argv[2] + ".tokens"))
rss0 = status("VmRSS:")
t0, c0 = time.perf_counter(), time.process_time()
dets = D.load_detections(sys.argv[2], sample_tokens=tokens)
t1, c1 = time.perf_counter(), time.process_time()
import hashlib
digest, arrays = hashlib.sha256(), 0
for token, d in dets.items():
    digest.update(token.encode())
    for a in (d.boxes, d.velocities, d.scores, d.classes):
        digest.update(a.tobytes())
        arrays += a.nbytes
print(json.dumps(dict(boxes=dets.num_boxes, module=D.__file__, rss_before_mib=rss0, peak_mib=status("VmHWM:"),
                      arrays_mib=arrays / 2 ** 20, sha256=digest.hexdigest(),
                      rss_after_mib=status("VmRSS:"), wall_s=t1 - t0, cpu_s=c1 - c0)))
"""


DET_READERS = ("piecewise", "piecewise-numba-loaded", "whole", "before")


def detections_bench(boxes: int, out: str, before_src: Optional[str] = None, repeat: int = 2,
                     readers=DET_READERS) -> None:
    """Peak RSS and time of :func:`nutrack.data.load_detections` on a file of ``boxes`` boxes at
    500 a sample, each read in a fresh interpreter by each of ``readers``: this tree piecewise
    (the default for files of 8 MiB or more), the same with numba imported beforehand, this
    tree reading whole, and ``before_src`` (a checkout of an older tree) if given."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"detections-{boxes}.json")
    if not os.path.exists(path + ".tokens"):
        tokens = _write_detection_file(path, boxes)
        with open(path + ".tokens", "w") as f:
            json.dump(tokens, f)
    size_mib = os.path.getsize(path) / 2 ** 20
    print(f"{path}: {boxes} boxes, {size_mib:.0f} MiB; load average {_loadavg()}", flush=True)
    variants = [(r, ROOT, r) for r in readers if r != "before"]
    if before_src and "before" in readers:
        variants.append(("before", before_src, "whole"))
    subprocess.run([sys.executable, "-c", _LOAD_CHILD, ROOT, path, "piecewise"], check=True,
                   stdout=subprocess.DEVNULL)  # numba compiles the scan once, into its cache
    print("| reader | boxes | peak - start MiB | kept MiB | arrays MiB | growth / file | bytes a box (peak) | wall s "
          "| CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    digests = set()
    for _ in range(repeat):
        for name, src, mode in variants:
            res = subprocess.run([sys.executable, "-c", _LOAD_CHILD, src, path, mode], check=True,
                                 capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            assert r["module"].startswith(src), r["module"]  # the tree meant, not an installed one
            grow = r["peak_mib"] - r["rss_before_mib"]
            digests.add(r["sha256"])
            print(f"| {name} | {r['boxes']} | {grow:.0f} | {r['rss_after_mib'] - r['rss_before_mib']:.0f} | "
                  f"{r['arrays_mib']:.0f} | {grow / size_mib:.2f}x | {grow * 2 ** 20 / r['boxes']:.0f} | "
                  f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} |", flush=True)
    print(f"load average after: {_loadavg()}; the readers' arrays (sha256 of tokens and bytes) are "
          f"{'identical' if len(digests) == 1 else 'DIFFERENT: ' + ', '.join(sorted(digests))}")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 40, 150], help="scenes per dataset")
    p.add_argument("--out", default=os.path.join(HERE, "scale"), help="results.json, table.md, the plot")
    p.add_argument("--data-dir", help="where the datasets are generated (default: --out)")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--keyframes", type=int, default=40)
    p.add_argument("--sweeps", type=int, default=1, help="lidar sweeps between keyframes (nuScenes: ~9)")
    p.add_argument("--azimuth-steps", type=int, default=360, help="lidar rays per beam and sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-workers", type=int, default=2)
    p.add_argument("--nproc", type=int, nargs="*", default=[], help="also train with these torchrun process counts")
    p.add_argument("--keep", action="store_true", help="keep the datasets")
    p.add_argument("--report", nargs="*", metavar="RESULTS_DIR",
                   help="only rewrite the table and plot into --out from these folders' results.json "
                        "(default: --out's)")
    p.add_argument("--merge-bench", action="store_true",
                   help="only time the devkit's merge of per-scene event tables against nutrack.eval_merge's")
    p.add_argument("--frames-bench", action="store_true",
                   help="only time the train stage with a cold and a warm frame cache, 1 and --nproc processes")
    p.add_argument("--detections-bench", type=int, metavar="BOXES",
                   help="only measure load_detections' peak memory and time on a file of BOXES boxes, 500 a sample")
    p.add_argument("--before-src", help="with --detections-bench: also an older tree (e.g. from git archive)")
    p.add_argument("--readers", nargs="+", choices=DET_READERS, default=list(DET_READERS),
                   help="with --detections-bench: the readers to measure")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.stage:
        return _child_main(a.stage, a.spec, a.result)
    if a.merge_bench:
        merge_bench()
        return 0
    if a.detections_bench:
        detections_bench(a.detections_bench, a.out, a.before_src, readers=a.readers)
        return 0
    if a.frames_bench:
        frames_bench(a)
        return 0
    if a.report is not None:
        report(a.out, a.report or None)
        return 0
    measure(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
