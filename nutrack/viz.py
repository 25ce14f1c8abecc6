"""Bird's-eye-view pictures of tracking results.

    python -m nutrack.viz --results tracks.json --dataroot D --version V --scene NAME --out DIR

draws every frame of a scene as a PNG (``DIR/<scene>_<frame>.png``) and the whole scene as an
animated GIF (``DIR/<scene>.gif``): ground-truth boxes in black (the ones the evaluation
keeps: in range and with lidar/radar points; the others dotted grey), tracked boxes in one
colour per track id with their id and a heading tick, each track's trajectory trailing
behind, the ego vehicle, and ID switches marked with a red ring: a ground-truth object
matched (the devkit's rule: same class, centre distance < 2 m, one to one) to a different
track id than the last time it was matched. Without ``--dataroot`` it reads the embedded
synthetic dataset. Matplotlib with the Agg backend; no display needed.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict, deque
from typing import Dict, List, Optional, Sequence

import numpy as np

from nutrack._cli import ArgumentParser, UserError, check_writable_dir, run_main
from nutrack._io import atomic_write_with

__all__ = ["render_scene", "main"]

PROG = "python -m nutrack.viz"


def _corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) boxes -> (N, 5, 2) closed BEV outlines."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    hx, hy = boxes[:, 3] / 2, boxes[:, 4] / 2
    sx = np.array([1, -1, -1, 1, 1])
    sy = np.array([1, 1, -1, -1, 1])
    x = boxes[:, None, 0] + sx * hx[:, None] * c[:, None] - sy * hy[:, None] * s[:, None]
    y = boxes[:, None, 1] + sx * hx[:, None] * s[:, None] + sy * hy[:, None] * c[:, None]
    return np.stack([x, y], axis=-1)


def _colour(track_id, cmap) -> tuple:
    h = hash(str(track_id)) if not isinstance(track_id, (int, np.integer)) else int(track_id) * 7
    return cmap((h % 20) / 20.0 + 0.025)


def _draw_ground_truth(ax, gt_all, gt_eval) -> None:
    """Evaluated ground-truth boxes solid black, the ones the evaluation drops dotted grey."""
    kept = set(gt_eval.annotation_tokens.tolist())
    for poly, tok in zip(_corners(gt_all.boxes.astype(np.float64)), gt_all.annotation_tokens.tolist()):
        if tok in kept:
            ax.plot(poly[:, 0], poly[:, 1], color="black", lw=1.2)
        else:
            ax.plot(poly[:, 0], poly[:, 1], color="grey", lw=0.6, ls=":")


def _update_trails(trails: Dict[object, deque], ids: list, boxes: np.ndarray) -> None:
    """Append the live tracks' centres; a track not seen this frame loses its oldest point."""
    for tid, box in zip(ids, boxes):
        trails[tid].append(box[:2].copy())
    live = set(ids)
    for tid in list(trails):
        if tid not in live:
            if trails[tid]:
                trails[tid].popleft()
            if not trails[tid]:
                del trails[tid]


def _draw_tracks(ax, trails: Dict[object, deque], ids: list, boxes: np.ndarray, cmap) -> None:
    """Trajectories, then each box filled in its track's colour with a heading tick and its id."""
    for tid, pts in trails.items():
        if len(pts) > 1:
            p = np.array(pts)
            ax.plot(p[:, 0], p[:, 1], "-", color=_colour(tid, cmap), lw=1.0, alpha=0.7)
    for tid, box, poly in zip(ids, boxes, _corners(boxes)):
        col = _colour(tid, cmap)
        ax.fill(poly[:-1, 0], poly[:-1, 1], color=col, alpha=0.35, lw=0)
        ax.plot(poly[:, 0], poly[:, 1], color=col, lw=1.4)
        head = box[:2] + 0.5 * box[3] * np.array([np.cos(box[6]), np.sin(box[6])])
        ax.plot([box[0], head[0]], [box[1], head[1]], color=col, lw=1.4)
        ax.text(box[0], box[1] + 0.6 * max(box[3], box[4]), str(tid), fontsize=6, color=col,
                ha="center", va="bottom")


def _id_switches(tr, gt_eval, ids: list, boxes: np.ndarray, last_id: Dict[str, object]) -> list:
    """``[(box, old id, new id)]``: evaluated ground-truth objects matched (the devkit's rule)
    to another track id than the last time; ``last_id`` is updated."""
    from nutrack.data import assign_frame

    switches = []
    if len(gt_eval):
        match = assign_frame(tr, gt_eval)
        for i in np.flatnonzero(match.matched):
            inst = str(match.instance_tokens[i])
            tid = ids[i]
            if inst in last_id and last_id[inst] != tid:
                switches.append((boxes[i], last_id[inst], tid))
            last_id[inst] = tid
    return switches


def _above(tr, min_score: float):
    from nutrack.data import Tracks

    if tr is None or min_score <= 0 or not len(tr):
        return tr
    keep = tr.scores >= min_score
    return Tracks(tr.boxes[keep], tr.velocities[keep], tr.scores[keep], tr.classes[keep], tr.track_ids[keep])


def render_scene(results: Dict[str, object], data, scene: str, out_dir: str, *, view_range: float = 60.0,
                 trail: int = 10, min_score: float = 0.0, gif: bool = True, png: bool = True, dpi: int = 100,
                 frame_seconds: float = 0.5, progress: bool = False) -> Dict[str, object]:
    """Draw ``scene`` of ``results`` (``{sample_token: Tracks}``) over ``data``'s ground truth.

    Returns ``{"pngs": [paths], "gif": path or None, "id_switches": n}``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    sc = data.scene(scene)
    os.makedirs(out_dir, exist_ok=True)
    cmap = plt.get_cmap("tab20")
    trails: Dict[object, deque] = defaultdict(lambda: deque(maxlen=max(trail, 1)))
    last_id: Dict[str, object] = {}
    pngs: List[str] = []
    images = []
    total_switches = 0
    frames = sc.frames
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc=f"drawing {sc.name}", unit="frame")
    for frame in frames:
        tr = _above(results.get(frame.sample_token), min_score)
        gt_eval = data.ground_truth(frame.sample_token, eval_filter=True)
        ego = frame.ego_translation
        fig, ax = plt.subplots(figsize=(8, 8))
        ax.set_xlim(ego[0] - view_range, ego[0] + view_range)
        ax.set_ylim(ego[1] - view_range, ego[1] + view_range)
        ax.set_aspect("equal")
        ax.set_facecolor("#f7f7f7")
        _draw_ground_truth(ax, data.ground_truth(frame.sample_token), gt_eval)
        switches = []
        if tr is not None and len(tr):
            ids = tr.track_ids.tolist()
            boxes = tr.boxes.astype(np.float64)
            _update_trails(trails, ids, boxes)
            _draw_tracks(ax, trails, ids, boxes, cmap)
            switches = _id_switches(tr, gt_eval, ids, boxes, last_id)
        for box, old, new in switches:
            ax.plot(box[0], box[1], "o", ms=18, mfc="none", mec="red", mew=2.0)
            ax.text(box[0], box[1] - 2.2, f"IDS {old}->{new}", color="red", fontsize=7, ha="center", va="top")
        total_switches += len(switches)
        ax.plot(ego[0], ego[1], marker=(3, 0, np.degrees(frame.ego_yaw) - 90), ms=12, color="tab:red")
        n_tr = 0 if tr is None else len(tr)
        ax.set_title(f"{sc.name}  frame {frame.index:03d}  t={frame.index * frame_seconds:.1f}s  "
                     f"tracks {n_tr}  gt {len(gt_eval)}  ID switches {len(switches)} (total {total_switches})",
                     fontsize=9)
        ax.set_xlabel("x (m, global)")
        ax.set_ylabel("y (m, global)")
        fig.tight_layout()
        if png:  # through nutrack._io: a killed run leaves no half-written picture
            path = os.path.join(out_dir, f"{sc.name}_{frame.index:03d}.png")
            atomic_write_with(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
            pngs.append(path)
        if gif:
            fig.canvas.draw()
            images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    gif_path = None
    if gif and images:
        from PIL import Image

        gif_path = os.path.join(out_dir, f"{sc.name}.gif")
        pil = [Image.fromarray(im) for im in images]
        atomic_write_with(gif_path, lambda f: pil[0].save(f, format="GIF", save_all=True, append_images=pil[1:],
                                                          duration=int(frame_seconds * 1000), loop=0))
    return {"pngs": pngs, "gif": gif_path, "id_switches": total_switches}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; a user mistake ends in one line and exit code 2 (:mod:`nutrack._cli`)."""
    return run_main(PROG, _main, argv)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Draw bird's-eye-view frames (PNGs) and an animated GIF of a scene's tracks over its ground truth.")
    p.add_argument("--results", required=True, help="tracking-submission JSON")
    p.add_argument("--dataroot", help="nuScenes folder (default: the embedded synthetic dataset)")
    p.add_argument("--version", help="dataset version (required with --dataroot)")
    p.add_argument("--scene", help="scene name, e.g. scene-0103 (default: the first scene in the results)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--range", type=float, default=60.0, dest="view_range",
                   help="half width of the view around the ego, metres (default 60)")
    p.add_argument("--trail", type=int, default=10, help="trajectory length in frames (default 10)")
    p.add_argument("--min-score", type=float, default=0.0, help="hide tracked boxes scoring below this (default 0)")
    p.add_argument("--dpi", type=int, default=100, help="PNG resolution (default 100)")
    p.add_argument("--no-gif", action="store_true", help="PNGs only")
    p.add_argument("--no-png", action="store_true", help="the GIF only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _main(argv: Optional[Sequence[str]]) -> int:
    a = _parser().parse_args(argv)
    if not os.path.isfile(a.results):
        raise UserError(f"results file {a.results!r} does not exist")
    if a.no_gif and a.no_png:
        raise UserError("--no-gif and --no-png together leave nothing to draw")
    # `not (0 < x < inf)`: nan and inf fail too (matplotlib refuses infinite axis limits); a
    # dpi above 1000 would be gigabytes of pixels per frame
    if not (0 < a.view_range < float("inf") and a.trail >= 1 and 10 <= a.dpi <= 1000):
        raise UserError("--range must be a finite number > 0, --trail >= 1, --dpi in [10, 1000]")
    if not 0.0 <= a.min_score <= 1.0:
        raise UserError(f"--min-score must be in [0, 1], got {a.min_score}")
    check_writable_dir(a.out, "--out")
    from nutrack.data import NuScenesData, load_tracking_results

    dataroot, version = _dataset(a)
    data = NuScenesData(dataroot, version)
    results, _ = load_tracking_results(a.results, data)
    scene = _pick_scene(a.scene, results, data)
    info = render_scene(results, data, scene, a.out, view_range=a.view_range, trail=a.trail, min_score=a.min_score,
                        gif=not a.no_gif, png=not a.no_png, dpi=a.dpi, progress=not a.quiet)
    print(f"{len(info['pngs'])} PNGs" + (f", {info['gif']}" if info["gif"] else "") +
          f" in {a.out}; {info['id_switches']} ID switches marked")
    return 0


def _dataset(a: argparse.Namespace):
    if a.dataroot is not None:
        if a.version is None:
            raise UserError("--dataroot needs --version")
        return a.dataroot, a.version
    from nutrack.data.synth import default_dataset

    ds = default_dataset(progress=not a.quiet)
    if a.version is not None and a.version != ds.version:
        raise UserError(f"the embedded dataset is {ds.version}; --version {a.version} needs --dataroot")
    return ds.dataroot, ds.version


def _pick_scene(scene: Optional[str], results, data) -> str:
    """``scene`` if the results hold it, else (None) the first of theirs by name."""
    token_scene = {s["token"]: s["scene_token"] for s in data.nusc.sample}
    scenes_in = []
    for tok in results:
        name = data.nusc.get("scene", token_scene[tok])["name"]
        if name not in scenes_in:
            scenes_in.append(name)
    if scene is None:
        if not scenes_in:
            raise UserError("the results hold no samples")
        scene = sorted(scenes_in)[0]
        print(f"drawing scene {scene} (of {', '.join(sorted(scenes_in))})")
    elif scene not in scenes_in:
        raise UserError(f"scene {scene!r} is not in the results (they hold {', '.join(sorted(scenes_in)) or 'none'})")
    return scene


if __name__ == "__main__":
    sys.exit(main())
