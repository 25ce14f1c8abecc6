"""``python -m nutrack.ablate``: the learned tracker's ablations, over several seeds, in one command.

Each variant is ``python -m nutrack.train`` with a few options changed, run once per seed on
the embedded dataset of that generator seed (``--data-seed S --seed S``: a different dataset
and a different training run per seed). The table gives the mean and the spread (sample
standard deviation) over the seeds of the devkit's AMOTA, MOTA, IDS and recall on val, and
the ``filter`` and ``centerpoint`` trackers on the same seeds.

    python -m nutrack.ablate                       # every variant, seeds 0 1 2
    python -m nutrack.ablate --variants default no-points --seeds 0 1 2 3 4
    python -m nutrack.ablate --output runs/ablations --jobs 2

Every run has its own directory under ``--output`` (``<variant>-seed<S>``) and log; a run that
finished is read back, not trained again, so a killed ablation continues where it stopped.
The table is printed and written to ``--output``/ablations.md (and .json).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

from nutrack._cli import ArgumentParser, UserError, check_writable_dir, run_main
from nutrack._io import atomic_write_bytes, atomic_write_json

__all__ = ["VARIANTS", "main"]

PROG = "python -m nutrack.ablate"

#: variant name -> the nutrack.train options that make it (``default``: the main job's model)
VARIANTS: Dict[str, List[str]] = {
    "default": [],
    "no-points": ["--no-points"],
    "softmax": ["--normalization", "softmax"],
    "history-1": ["--history", "1"],
    "history-8": ["--history", "8"],
    "no-confidence": ["--no-confidence"],
}
_METRICS = ("amota", "mota", "ids", "recall")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Ablations of the learned tracker over generator seeds "
                                              "(see docs/training.md, 'Ablations').")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                   help=f"variants to run (default: all of {', '.join(VARIANTS)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="generator and training seeds")
    p.add_argument("--output", "-o", default=os.path.join("runs", "ablations"), help="folder of the runs and tables")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (each uses one CPU core)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="nutrack.train --eval-every of every run (default 0: val is tracked once, at the end, "
                        "and the last epoch is the one kept)")
    p.add_argument("--train-args", default="", help="more nutrack.train options for every run, one string")
    return p


def _run_dir(output: str, variant: str, seed: int) -> str:
    return os.path.join(output, f"{variant}-seed{seed}")


def _command(variant: str, seed: int, run_dir: str, args) -> List[str]:
    cmd = [sys.executable, "-m", "nutrack.train", "--data-seed", str(seed), "--seed", str(seed), "--output", run_dir,
           "--eval-every", str(args.eval_every), "--quiet", *VARIANTS[variant], *args.train_args.split()]
    if variant != "default":
        cmd.append("--no-baselines")  # the baselines do not depend on the variant: run once per seed
    if os.path.isfile(os.path.join(run_dir, "last.pt")):
        cmd.append("--resume")
    return cmd


def _run(variant: str, seed: int, args) -> dict:
    """The run's metrics.json, training it first unless it is complete."""
    run_dir = _run_dir(args.output, variant, seed)
    metrics = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(metrics):
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "train.log"), "ab") as log:
            rc = subprocess.call(_command(variant, seed, run_dir, args), stdout=log, stderr=subprocess.STDOUT)
        if rc != 0 or not os.path.isfile(metrics):
            raise UserError(f"the run {run_dir} failed (exit code {rc}); see {os.path.join(run_dir, 'train.log')}")
    with open(metrics, "rb") as f:
        return json.load(f)


def _mean_std(values: Sequence[Optional[float]]):
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def summarize(results: Dict[str, Dict[int, dict]]) -> List[dict]:
    """One row per variant (the learned tracker) and per baseline found in the ``default``
    runs: mean and spread over the seeds of each metric."""
    rows = []
    sources = [(v, v, "learned") for v in results]
    if "default" in results:
        sources += [(m, "default", m) for m in ("filter", "centerpoint")]
    for name, variant, method in sources:
        per_seed = {s: r["comparison"].get(method) for s, r in results[variant].items()}
        per_seed = {s: r for s, r in per_seed.items() if r}
        if not per_seed:
            continue
        row = {"name": name if method == "learned" else f"{method} (baseline)", "options": " ".join(VARIANTS.get(name, [])),
               "seeds": sorted(per_seed)}
        for k in _METRICS:
            row[k], row[k + "_std"] = _mean_std([per_seed[s].get(k) for s in row["seeds"]])
            row[k + "_per_seed"] = [per_seed[s].get(k) for s in row["seeds"]]
        rows.append(row)
    return rows


def format_table(rows: List[dict]) -> str:
    def cell(r, k, d=3):
        m, s = r[k], r[k + "_std"]
        return "n/a" if m is None else f"{m:.{d}f} ± {s:.{d}f}"

    lines = ["| variant | options | AMOTA | MOTA | IDS | recall | AMOTA per seed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        seeds = ", ".join("n/a" if a is None else f"{a:.3f}" for a in r["amota_per_seed"])
        lines.append(f"| {r['name']} | `{r['options']}` | {cell(r, 'amota')} | {cell(r, 'mota')} | "
                     f"{cell(r, 'ids', 1)} | {cell(r, 'recall')} | {seeds} |")
    return "\n".join(lines)


def _main(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    args.output = check_writable_dir(args.output, "--output")
    from tqdm import tqdm

    todo = [(v, s) for v in args.variants for s in args.seeds]
    results: Dict[str, Dict[int, dict]] = {v: {} for v in args.variants}
    with ThreadPoolExecutor(args.jobs) as pool, tqdm(total=len(todo), desc="ablation runs", unit="run") as bar:
        futures = {pool.submit(_run, v, s, args): (v, s) for v, s in todo}
        for fut in futures:
            v, s = futures[fut]
            results[v][s] = fut.result()
            bar.update(1)
    rows = summarize(results)
    table = format_table(rows)
    atomic_write_json(os.path.join(args.output, "ablations.json"), rows, indent=True)
    text = f"Seeds {', '.join(map(str, args.seeds))}; mean ± sample std over the seeds.\n\n{table}\n"
    atomic_write_bytes(os.path.join(args.output, "ablations.md"), text.encode())
    print(table)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
