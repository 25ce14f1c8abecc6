"""``python -m nutrack.track`` and ``python -m nutrack.viz`` end to end on the tiny synthetic
dataset, and their errors on bad arguments."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nutrack import track, viz
from nutrack.data import load_tracking_results


def _args(ds, out, *extra, split=None):
    split = split or ds.val_split
    return ["--dataroot", ds.dataroot, "--version", ds.version, "--split", split,
            "--detections", ds.detections[split], "--out", str(out), "--quiet", *extra]


@pytest.mark.parametrize("method", ["centerpoint", "filter"])
def test_track_end_to_end_with_eval(synthetic_dataset, synthetic_data, tmp_path, capsys, method):
    ds = synthetic_dataset
    out = tmp_path / "sub" / f"{method}.json"
    assert track.main(_args(ds, out, "--method", method, "--eval")) == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "AMOTA" in printed and "MOTA" in printed
    results, meta = load_tracking_results(out, synthetic_data, ds.val_split)  # exactly the split, valid
    assert meta["use_lidar"] is True
    assert sum(len(t) for t in results.values()) > 0
    assert os.path.isfile(tmp_path / "sub" / f"{method}_eval" / "metrics.json")
    assert [p for p in os.listdir(tmp_path / "sub") if p.endswith(".tmp")] == []


def test_track_parameters_change_the_result(synthetic_dataset, tmp_path):
    ds = synthetic_dataset
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert track.main(_args(ds, a, "--method", "filter")) == 0
    assert track.main(_args(ds, b, "--method", "filter", "--score-threshold", "0.9", "--param", "max_age=1",
                            "--param", "match_threshold.car=-0.2")) == 0
    na = sum(len(v) for v in json.load(open(a))["results"].values())
    nb = sum(len(v) for v in json.load(open(b))["results"].values())
    assert nb < na


def test_track_without_dataroot_uses_the_embedded_dataset(synthetic_dataset, tmp_path, monkeypatch, capsys):
    import nutrack.data.synth as synth

    monkeypatch.setattr(synth, "default_dataset", lambda **kw: synthetic_dataset)
    out = tmp_path / "default.json"
    assert track.main(["--out", str(out), "--method", "centerpoint", "--quiet"]) == 0
    data = json.load(open(out))
    assert len(data["results"]) > 0
    assert track.main(["--out", str(out), "--split", synthetic_dataset.train_split, "--quiet"]) == 0
    assert track.main(["--out", str(out), "--split", "nope", "--quiet"]) == 2
    assert "no simulated detections" in capsys.readouterr().err
    assert track.main(["--out", str(out), "--version", "v1.0-trainval", "--quiet"]) == 2


def _bad_detection_file(ds, tmp_path):
    with open(ds.detections[ds.val_split]) as f:
        data = json.load(f)
    token = next(t for t, boxes in data["results"].items() if boxes)
    del data["results"][token][0]["velocity"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path, token


def test_bad_detection_file_is_rejected_before_any_work(synthetic_dataset, tmp_path, capsys):
    ds = synthetic_dataset
    bad, token = _bad_detection_file(ds, tmp_path)
    out = tmp_path / "out.json"
    out.write_text("previous")
    args = _args(ds, out)
    args[args.index("--detections") + 1] = str(bad)
    assert track.main(args) == 2
    err = capsys.readouterr().err
    assert token in err and "box 0" in err and "velocity" in err
    assert out.read_text() == "previous"  # nothing written


@pytest.mark.parametrize("change, message", [
    (lambda a: a[:a.index("--version")] + a[a.index("--version") + 2:], "--dataroot needs --version"),
    (lambda a: _replace(a, "--detections", "/nonexistent/det.json"), "does not exist"),
    (lambda a: _replace(a, "--dataroot", "/nonexistent"), "not a folder"),
    (lambda a: a + ["--checkpoint", "x.pt"], "only used by --method learned"),
    (lambda a: a + ["--score-threshold", "1.5"], r"\[0, 1\]"),
    (lambda a: a + ["--param", "no_such=1"], "unknown FilterParams parameter"),
    (lambda a: a + ["--param", "max_age"], "NAME=VALUE"),
    (lambda a: a + ["--method", "learned"], "--checkpoint"),
    (lambda a: _replace(a, "--split", "no_such_split"), "unknown split"),
    (lambda a: _replace(a, "--version", "v9.9-none"), "no nuScenes version"),
])
def test_track_argument_errors(synthetic_dataset, tmp_path, capsys, change, message):
    import re

    args = change(_args(synthetic_dataset, tmp_path / "out.json"))
    assert track.main(args) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out.json").exists()


def _replace(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_learned_without_the_model_package(synthetic_dataset, tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "nutrack.model", None)  # as if the package were absent
    args = _args(synthetic_dataset, tmp_path / "out.json", "--method", "learned", "--checkpoint", str(ckpt))
    assert track.main(args) == 2
    assert "nutrack.model" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_learned_method_plugs_in_the_models_scorer(synthetic_dataset, synthetic_data, tmp_path, monkeypatch):
    """--method learned loads nutrack.model.load_scorer(checkpoint, device) and tracks with it."""
    import types

    from nutrack.tracking import Scorer

    class CentreScorer(Scorer):
        threshold = -3.0
        nsweeps = 2
        loaded = []
        points_seen = []

        def __call__(self, tracks, detections, context, candidates=None):
            self.points_seen.append(context.points().shape[1])
            d = tracks.boxes[:, None, :2] - detections.boxes[None, :, :2]
            return -np.sqrt((d ** 2).sum(-1))

    def load_scorer(checkpoint, device="cpu"):
        CentreScorer.loaded.append((checkpoint, device))
        return CentreScorer()

    monkeypatch.setitem(sys.modules, "nutrack.model", types.SimpleNamespace(load_scorer=load_scorer))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\0")
    out = tmp_path / "learned.json"
    args = _args(synthetic_dataset, out, "--method", "learned", "--checkpoint", str(ckpt), "--device", "cpu")
    assert track.main(args) == 0
    assert CentreScorer.loaded == [(str(ckpt), "cpu")]
    assert CentreScorer.points_seen and set(CentreScorer.points_seen) == {5}  # x y z intensity time_lag
    results, _ = load_tracking_results(out, synthetic_data, synthetic_dataset.val_split)
    assert sum(len(t) for t in results.values()) > 0


def test_unknown_method_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "nutrack.track", "--method", "sort"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = subprocess.run([sys.executable, "-m", "nutrack.viz", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--scene" in r.stdout


def test_viz_draws_pngs_and_a_gif(synthetic_dataset, synthetic_data, tmp_path, capsys):
    ds = synthetic_dataset
    res = tmp_path / "tracks.json"
    assert track.main(_args(ds, res, "--method", "centerpoint")) == 0
    scene = synthetic_data.split_scene_names(ds.val_split)[0]
    out = tmp_path / "viz"
    assert viz.main(["--results", str(res), "--dataroot", ds.dataroot, "--version", ds.version,
                     "--scene", scene, "--out", str(out), "--quiet", "--dpi", "40"]) == 0
    n_frames = len(synthetic_data.scene(scene))
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert len(pngs) == n_frames
    from PIL import Image

    with Image.open(out / f"{scene}.gif") as gif:
        assert gif.n_frames == n_frames
    assert "ID switches" in capsys.readouterr().out
    # errors
    assert viz.main(["--results", str(res), "--dataroot", ds.dataroot, "--version", ds.version,
                     "--scene", "scene-9999", "--out", str(out), "--quiet"]) == 2
    assert "not in the results" in capsys.readouterr().err
    assert viz.main(["--results", str(tmp_path / "none.json"), "--out", str(out)]) == 2
    assert viz.main(["--results", str(res), "--dataroot", ds.dataroot, "--out", str(out)]) == 2


def test_viz_marks_id_switches(synthetic_dataset, synthetic_data, tmp_path):
    """Swap two tracks' ids halfway through a scene: the drawing counts the switches."""
    ds = synthetic_dataset
    res = tmp_path / "tracks.json"
    assert track.main(_args(ds, res, "--method", "centerpoint")) == 0
    results, _ = load_tracking_results(res, synthetic_data, ds.val_split)
    scene = synthetic_data.split_scene_names(ds.val_split)[0]
    base = viz.render_scene(results, synthetic_data, scene, str(tmp_path / "a"), gif=False, png=False)
    frames = synthetic_data.scene(scene).frames
    from nutrack.data import Tracks

    half = len(frames) // 2
    for fr in frames[half:]:
        t = results[fr.sample_token]
        ids = np.array([f"x{i}" for i in t.track_ids.tolist()], dtype=object)  # every id changes once
        results[fr.sample_token] = Tracks(t.boxes, t.velocities, t.scores, t.classes, ids)
    swapped = viz.render_scene(results, synthetic_data, scene, str(tmp_path / "b"), gif=False, png=False)
    assert swapped["id_switches"] > base["id_switches"]
