"""`nutrack.eval`: the devkit's TrackingEval on the tiny synthetic dataset."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from nutrack.data import SubmissionFormatError, Tracks, write_tracking_results
from nutrack.eval import EvalDependencyError, evaluate_tracking, format_metrics, main


def gt_tracks(data, split, perturb=None, rng=None):
    """Tracking results made from the ground truth. Boxes with no lidar/radar point are
    dropped, as the evaluation drops them from the ground truth."""
    out = {}
    for k, tok in enumerate(data.sample_tokens(split)):
        gt = data.ground_truth(tok)
        gt = gt.select(gt.num_pts > 0)
        ids = gt.instance_tokens.astype(object)
        boxes = gt.boxes.copy()
        if perturb:
            keep = rng.random(len(gt)) > 0.3                   # misses
            boxes[:, :2] += rng.normal(0, 0.6, size=(len(gt), 2)).astype(np.float32)
            if k % 2:
                ids = np.array([f"{t}-{k}" for t in ids], dtype=object)  # identity switches
            boxes, ids, gt = boxes[keep], ids[keep], gt.select(keep)
        out[tok] = Tracks(boxes, np.nan_to_num(gt.velocities), np.ones(len(gt)), gt.classes, ids)
    return out


@pytest.fixture(scope="module")
def gt_results(tmp_path_factory, synthetic_dataset, synthetic_data):
    split = synthetic_dataset.val_split
    path = tmp_path_factory.mktemp("eval") / "gt_tracks.json"
    write_tracking_results(path, gt_tracks(synthetic_data, split), synthetic_data.sample_tokens(split))
    return path


def test_ground_truth_scores_amota_1(gt_results, synthetic_dataset, synthetic_data, tmp_path):
    ds = synthetic_dataset
    summary = evaluate_tracking(str(gt_results), ds.dataroot, ds.version, ds.val_split, str(tmp_path / "out"),
                                data=synthetic_data)
    assert summary["amota"] == pytest.approx(1.0)
    assert summary["ids"] == 0
    assert summary["recall"] == pytest.approx(1.0)
    assert summary["mota"] == pytest.approx(1.0)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["amota"] == pytest.approx(1.0)
    assert (tmp_path / "out" / "metrics_summary.json").is_file()


def test_perturbed_result_scores_clearly_lower(synthetic_dataset, synthetic_data, tmp_path):
    ds = synthetic_dataset
    split = ds.val_split
    path = tmp_path / "noisy.json"
    rng = np.random.default_rng(0)
    write_tracking_results(path, gt_tracks(synthetic_data, split, perturb=True, rng=rng),
                           synthetic_data.sample_tokens(split))
    summary = evaluate_tracking(str(path), ds.dataroot, ds.version, split, data=synthetic_data)
    assert summary["amota"] < 0.8
    assert summary["ids"] > 0
    assert (tmp_path / "noisy_eval" / "metrics.json").is_file()  # default output folder


def test_command_line(gt_results, synthetic_dataset, tmp_path, capsys):
    ds = synthetic_dataset
    rc = main(["--results", str(gt_results), "--dataroot", ds.dataroot, "--version", ds.version,
               "--split", ds.val_split, "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "AMOTA 1.000" in out and "IDS 0" in out and "RECALL 1.000" in out
    assert "car" in out and "metrics.json" in out
    assert (tmp_path / "metrics.json").is_file()


def test_bad_results_rejected_before_the_devkit(synthetic_dataset, synthetic_data, tmp_path, capsys):
    ds = synthetic_dataset
    tokens = synthetic_data.sample_tokens(ds.val_split)
    # a duplicate tracking id crashes the devkit with a bare assertion; we name it
    res = gt_tracks(synthetic_data, ds.val_split)
    raw = {"meta": {}, "results": {}}
    path = tmp_path / "r.json"
    write_tracking_results(path, res, tokens)
    raw = json.loads(path.read_text())
    tok = tokens[1]
    raw["results"][tok][1]["tracking_id"] = raw["results"][tok][0]["tracking_id"]
    path.write_text(json.dumps(raw))
    with pytest.raises(SubmissionFormatError, match=f"sample '{tok}', box 1, field 'tracking_id'"):
        evaluate_tracking(str(path), ds.dataroot, ds.version, ds.val_split, data=synthetic_data)
    # the train split's samples do not make a val result
    train_path = tmp_path / "train.json"
    write_tracking_results(train_path, {}, synthetic_data.sample_tokens(ds.train_split))
    rc = main(["--results", str(train_path), "--dataroot", ds.dataroot, "--version", ds.version,
               "--split", ds.val_split])
    assert rc == 2 and "not a sample of split 'mini_val'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        evaluate_tracking(str(tmp_path / "none.json"), ds.dataroot, ds.version, ds.val_split)
    assert not (tmp_path / "r_eval").exists()


@pytest.mark.parametrize("missing,devkit_says", [("motmetrics", "(import of motmetrics"),
                                                 ("pandas", "the devkit says: Skipping")])
def test_missing_eval_dependency_is_a_clear_error(monkeypatch, gt_results, synthetic_dataset, missing, devkit_says):
    """Without pandas the devkit raises unittest.SkipTest (not an ImportError), without
    motmetrics a bare ModuleNotFoundError; both become an ImportError saying what to install."""
    for mod in [m for m in list(sys.modules) if m.startswith("nuscenes.eval.tracking")] + ["motmetrics"]:
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setitem(sys.modules, missing, None)  # import <missing> -> ModuleNotFoundError
    ds = synthetic_dataset
    with pytest.raises(EvalDependencyError, match=r"needs motmetrics and pandas.*pip install 'motmetrics==1.4.0'") as e:
        evaluate_tracking(str(gt_results), ds.dataroot, ds.version, ds.val_split, check=False)
    assert devkit_says in str(e.value)
    assert isinstance(EvalDependencyError("x"), ImportError)


def test_format_metrics():
    text = format_metrics({"amota": 0.5, "amotp": 1.0, "mota": 0.4, "ids": 3.0, "frag": 2.0, "recall": float("nan"),
                           "label_metrics": {"amota": {"car": 0.5, "bus": float("nan")}, "ids": {"car": 3, "bus": 0}}})
    assert text.splitlines()[0] == "AMOTA 0.500  AMOTP 1.000  MOTA 0.400  IDS 3  FRAG 2  RECALL nan"
    assert "car" in text and "bus" in text


def test_named_trainval_split_evaluates(tmp_path):
    """A trainval-style synthetic dataset holding a few scenes of the devkit's `val` list is
    evaluated with the predefined `val` split."""
    from nutrack.data import NuScenesData
    from nutrack.data.synth import SynthConfig, generate_dataset

    cfg = SynthConfig.tiny(version="v1.0-trainval", keyframes=4, azimuth_steps=180)
    generate_dataset(str(tmp_path / "tv"), cfg, progress=False)
    data = NuScenesData(tmp_path / "tv", "v1.0-trainval")
    path = tmp_path / "val.json"
    write_tracking_results(path, gt_tracks(data, "val"), data.sample_tokens("val"))
    summary = evaluate_tracking(str(path), str(tmp_path / "tv"), "v1.0-trainval", "val", data=data)
    assert summary["amota"] == pytest.approx(1.0) and summary["ids"] == 0


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m nutrack.eval: error: "), lines[0]
    return lines[0]


def test_output_dir_checked_before_the_evaluation(gt_results, synthetic_dataset, tmp_path, capsys, monkeypatch):
    """`eval --output-dir` under a file fails at once, in one line, before the devkit runs."""
    import nutrack.eval as ev

    monkeypatch.setattr(ev, "_import_tracking_eval", lambda: pytest.fail("evaluated before checking --output-dir"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    ds = synthetic_dataset
    rc = main(["--results", str(gt_results), "--dataroot", ds.dataroot, "--version", ds.version,
               "--split", ds.val_split, "--output-dir", str(blocker / "out")])
    assert rc == 2
    line = _one_line(capsys)
    assert "--output-dir" in line and "is a file" in line
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_command_line_errors_are_one_line(synthetic_dataset, tmp_path, capsys):
    ds = synthetic_dataset
    base = ["--dataroot", ds.dataroot, "--version", ds.version, "--split", ds.val_split]
    assert main(["--results", str(tmp_path / "none.json"), *base]) == 2
    assert "none.json" in _one_line(capsys)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["--results", str(nested), *base]) == 2
    assert "nested" in _one_line(capsys)
    assert main(["--results", str(nested), *base[:2], "--version", "v9.9", "--split", ds.val_split]) == 2
    assert "v9.9" in _one_line(capsys)
    assert not (tmp_path / "nested_eval").exists()


def test_full_disk_writing_metrics(gt_results, synthetic_dataset, tmp_path, capsys, monkeypatch):
    import errno

    real_fsync = os.fsync

    def fsync(fd):  # the devkit writes its own files with plain open(); ours go through _io
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    ds = synthetic_dataset
    rc = main(["--results", str(gt_results), "--dataroot", ds.dataroot, "--version", ds.version,
               "--split", ds.val_split, "--output-dir", str(tmp_path / "out")])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert rc == 2
    line = _one_line(capsys)
    assert "no space left" in line and "metrics.json" in line
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert [p for p in os.listdir(tmp_path / "out") if p.endswith(".tmp")] == []
