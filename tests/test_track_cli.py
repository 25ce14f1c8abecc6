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
    (lambda a: _replace(a, "--detections", "/"), "is not a file"),
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
    assert r.returncode == 2 and "invalid choice" in r.stderr and len(r.stderr.strip().splitlines()) == 1
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


# --------------------------------------------------------------------------------------
# Issue 10: every user mistake is one line on stderr, exit code 2, and no output file
# --------------------------------------------------------------------------------------


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m nutrack.track: error: "), lines[0]
    return lines[0]


def _with_detections(ds, tmp_path, text, name="det.json"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    args = _args(ds, tmp_path / "out.json")
    return _replace(args, "--detections", str(path))


def test_duplicate_sample_in_the_detection_file(synthetic_dataset, tmp_path, capsys):
    ds = synthetic_dataset
    text = open(ds.detections[ds.val_split]).read()
    data = json.loads(text)
    token = next(t for t, boxes in data["results"].items() if boxes)
    assert text.rstrip().endswith("}}")
    text = text.rstrip()[:-2] + ', "%s": []}}' % token  # listed again, empty: its boxes would vanish
    assert track.main(_with_detections(ds, tmp_path, text)) == 2
    line = _one_line(capsys)
    assert token in line and "more than once" in line and "det.json" in line
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested"),
    (b'{"meta": {}, "results": {"\xff": []}}', "UTF-8"),
])
def test_unparsable_detection_file(synthetic_dataset, tmp_path, capsys, text, message):
    assert track.main(_with_detections(synthetic_dataset, tmp_path, text)) == 2
    line = _one_line(capsys)
    assert message in line and "det.json" in line
    assert not (tmp_path / "out.json").exists()


def test_unparsable_detection_file_in_a_subprocess(synthetic_dataset, tmp_path):
    """The module entry point goes through the same one-line errors (no traceback)."""
    args = _with_detections(synthetic_dataset, tmp_path, b'{"meta": {}, "results": {"a\xff": []}}')
    r = subprocess.run([sys.executable, "-m", "nutrack.track", *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "UTF-8" in r.stderr and "det.json" in r.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("device, cuda, message", [
    ("bogus", False, "--device 'bogus'"),
    ("cuda", False, "no CUDA"),
    ("cuda:7", True, "cuda:7"),
])
def test_bad_device(synthetic_dataset, tmp_path, capsys, monkeypatch, device, cuda, message):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\0")
    args = _args(synthetic_dataset, tmp_path / "out.json", "--method", "learned", "--checkpoint", str(ckpt),
                 "--device", device)
    assert track.main(args) == 2
    assert message in _one_line(capsys)
    assert not (tmp_path / "out.json").exists()


def test_device_needs_the_learned_method(synthetic_dataset, tmp_path, capsys):
    assert track.main(_args(synthetic_dataset, tmp_path / "out.json", "--device", "cuda")) == 2
    assert "only used by --method learned" in _one_line(capsys)


def _no_tracking(monkeypatch):
    """Fail the test if the tracker runs: unwritable outputs must be caught before the work."""
    import nutrack.tracking

    def boom(*a, **k):
        raise AssertionError("tracked before checking the output paths")

    monkeypatch.setattr(nutrack.tracking, "track_scenes", boom)


@pytest.mark.parametrize("flag", ["--out", "--eval-dir"])
def test_output_under_a_file(synthetic_dataset, tmp_path, capsys, monkeypatch, flag):
    _no_tracking(monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    args = _args(synthetic_dataset, tmp_path / "out.json", "--eval")
    if flag == "--out":
        args = _replace(args, "--out", str(blocker / "sub" / "out.json"))
    else:
        args += ["--eval-dir", str(blocker / "eval")]
    assert track.main(args) == 2
    line = _one_line(capsys)
    assert flag in line and "a_file" in line and "is a file" in line
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_out_is_a_folder(synthetic_dataset, tmp_path, capsys, monkeypatch):
    _no_tracking(monkeypatch)
    assert track.main(_args(synthetic_dataset, tmp_path)) == 2
    assert "is a folder" in _one_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("sub", ["out.json", "missing/out.json"])
def test_output_in_a_read_only_folder(synthetic_dataset, tmp_path, capsys, monkeypatch, sub):
    _no_tracking(monkeypatch)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert track.main(_args(synthetic_dataset, ro / sub)) == 2
        assert "no permission" in _one_line(capsys)
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_full_disk(synthetic_dataset, tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the result: one line naming the file, no partial or temporary file."""
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "out.json"
    assert track.main(_args(synthetic_dataset, out, "--method", "centerpoint")) == 2
    line = _one_line(capsys)
    assert "no space left" in line and "out.json" in line
    assert os.listdir(tmp_path) == []


def _dataset_copy(ds, tmp_path):
    """A private copy of the tiny dataset whose files a test may damage."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(ds.dataroot, root)
    return root


@pytest.mark.parametrize("damage, message", [
    (lambda p: open(p, "r+b").truncate(os.path.getsize(p) - 3), "truncated"),
    (lambda p: open(p, "wb").close(), "empty"),
    (os.remove, "missing"),
])
def test_corrupt_lidar_in_the_learned_tracker(synthetic_dataset, synthetic_data, tmp_path, capsys, monkeypatch,
                                              damage, message):
    import types

    from nutrack.tracking import Scorer

    class PointScorer(Scorer):
        threshold = -3.0
        nsweeps = 1

        def __call__(self, tracks, detections, context, candidates=None):
            context.points()
            d = tracks.boxes[:, None, :2] - detections.boxes[None, :, :2]
            return -np.sqrt((d ** 2).sum(-1))

    monkeypatch.setitem(sys.modules, "nutrack.model",
                        types.SimpleNamespace(load_scorer=lambda checkpoint, device="cpu": PointScorer()))
    ds = synthetic_dataset
    root = _dataset_copy(ds, tmp_path)
    frame = synthetic_data.scene(synthetic_data.split_scene_names(ds.val_split)[0]).frames[2]
    lidar = os.path.join(root, os.path.relpath(frame.lidar_path, synthetic_data.dataroot))
    damage(lidar)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\0")
    out = tmp_path / "out.json"
    args = _replace(_args(ds, out, "--method", "learned", "--checkpoint", str(ckpt)), "--dataroot", str(root))
    assert track.main(args) == 2
    line = _one_line(capsys)
    assert message in line and os.path.basename(lidar) in line
    assert not out.exists()


@pytest.mark.parametrize("param, name", [
    ("nms_threshold=nan", "nms_threshold"),
    ("score_threshold=inf", "score_threshold"),
    ("match_threshold.car=nan", "match_threshold"),
])
def test_bad_parameter_values(synthetic_dataset, tmp_path, capsys, param, name):
    assert track.main(_args(synthetic_dataset, tmp_path / "out.json", "--param", param)) == 2
    assert name in _one_line(capsys)
    assert not (tmp_path / "out.json").exists()


def test_viz_errors_are_one_line(synthetic_dataset, synthetic_data, tmp_path, capsys):
    ds = synthetic_dataset
    res = tmp_path / "tracks.json"
    assert track.main(_args(ds, res, "--method", "centerpoint")) == 0
    capsys.readouterr()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    base = ["--results", str(res), "--dataroot", ds.dataroot, "--version", ds.version, "--quiet"]
    assert viz.main(base + ["--out", str(blocker / "viz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("python -m nutrack.viz: error: --out") and "is a file" in err
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    assert viz.main(_replace(base, "--results", str(nested)) + ["--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "nested" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()
    for flag, value in (("--range", "inf"), ("--range", "nan"), ("--dpi", "100000"), ("--min-score", "nan")):
        assert viz.main(base + ["--out", str(tmp_path / "v"), flag, value]) == 2
        err = capsys.readouterr().err
        assert flag in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()


def test_deeply_nested_meta_is_not_copied_into_the_output(synthetic_dataset, tmp_path, capsys):
    """A meta block nested 900 deep parses (orjson allows 1024), but orjson cannot write
    more than 254 levels: only the five flags of the submission format go into the output."""
    ds = synthetic_dataset
    data = json.load(open(ds.detections[ds.val_split]))
    deep = 0
    for _ in range(900):
        deep = [deep]
    data["meta"]["exporter_notes"] = deep
    args = _with_detections(ds, tmp_path, json.dumps(data))
    assert track.main(args + ["--method", "centerpoint"]) == 0, capsys.readouterr().err
    meta = json.load(open(tmp_path / "out.json"))["meta"]
    assert meta == {k: data["meta"][k] for k in ("use_camera", "use_lidar", "use_radar", "use_map", "use_external")}


def test_checkpoint_errors_pass_through_as_one_line(synthetic_dataset, tmp_path, capsys, monkeypatch):
    """nutrack.model raises a UserError subclass for a garbage checkpoint: one line, exit 2."""
    import types

    from nutrack._cli import UserError

    class CheckpointError(UserError, ValueError):
        pass

    def load_scorer(checkpoint, device="cpu"):
        raise CheckpointError(f"checkpoint {checkpoint}: not a nutrack checkpoint (random bytes)")

    monkeypatch.setitem(sys.modules, "nutrack.model", types.SimpleNamespace(load_scorer=load_scorer))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(os.urandom(64))
    args = _args(synthetic_dataset, tmp_path / "out.json", "--method", "learned", "--checkpoint", str(ckpt))
    assert track.main(args) == 2
    assert "not a nutrack checkpoint" in _one_line(capsys)
    assert not (tmp_path / "out.json").exists()
