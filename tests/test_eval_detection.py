"""`nutrack.eval.evaluate_detection` / `python -m nutrack.eval --detection`: the devkit's
DetectionEval (detection_cvpr_2019) on a tiny synthetic dataset with road works."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nutrack.data import LabelledDetections, NuScenesData, write_detections
from nutrack.data.classes import CLASS_TO_ID, DETECTION_CLASSES
from nutrack.data.synth import SynthConfig, build, simulate_detections
from nutrack.data.synth.simulator import detection_truth
from nutrack.eval import evaluate_detection, format_detection_metrics, main


def truth_detections(data, split):
    """Detections made from the ground truth of the ten classes, with its attributes; boxes
    with no lidar point dropped, as the evaluation drops them from the ground truth."""
    out = {}
    for tok in data.sample_tokens(split):
        t = detection_truth(data, tok)
        keep = t.num_pts > 0
        names = np.array([DETECTION_CLASSES[c] for c in t.classes[keep]], dtype=object)
        out[tok] = LabelledDetections(t.boxes[keep], t.velocities[keep], np.ones(keep.sum()),
                                      np.array([CLASS_TO_ID.get(n, -1) for n in names]), names, t.attributes[keep])
    return out


def scored_classes(data, split):
    """The classes with ground truth the evaluation keeps: within the class range, with points."""
    from nuscenes.eval.common.config import config_factory

    class_range = config_factory("detection_cvpr_2019").class_range
    out = set()
    for scene in data.scenes(split):
        for frame in scene.frames:
            t = detection_truth(data, frame.sample_token)
            r = np.hypot(*(t.boxes[:, :2] - frame.ego_translation[:2]).T)
            out |= {DETECTION_CLASSES[c] for c, d, n in zip(t.classes, r, t.num_pts)
                    if n > 0 and d < class_range[DETECTION_CLASSES[c]]}
    return out


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory):
    """A tiny dataset dense enough to hold cones and barriers near the ego (the shared one may not)."""
    cfg = SynthConfig.tiny(keyframes=4, azimuth_steps=180, density=3.0)
    return build(str(tmp_path_factory.mktemp("road_works") / "ds"), cfg, progress=False)


@pytest.fixture(scope="module")
def synthetic_data(synthetic_dataset):
    return NuScenesData(synthetic_dataset.dataroot, synthetic_dataset.version)


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory, synthetic_dataset, synthetic_data):
    split = synthetic_dataset.val_split
    path = tmp_path_factory.mktemp("det_eval") / "truth.json"
    write_detections(path, truth_detections(synthetic_data, split), synthetic_data.sample_tokens(split))
    return path


def test_ground_truth_detections_score_ap_1(truth_file, synthetic_dataset, synthetic_data, tmp_path):
    ds = synthetic_dataset
    summary = evaluate_detection(str(truth_file), ds.dataroot, ds.version, ds.val_split, str(tmp_path / "out"),
                                 data=synthetic_data)
    present = scored_classes(synthetic_data, ds.val_split)
    assert "car" in present and present & {"traffic_cone", "barrier"}  # detection-only classes are scored too
    for cls in present:
        assert np.mean(list(summary["label_aps"][cls].values())) == pytest.approx(1.0), cls
        errors = summary["label_tp_errors"][cls]
        assert errors["trans_err"] == pytest.approx(0.0, abs=1e-3), cls
        if cls not in ("traffic_cone", "barrier"):  # the devkit scores no attribute for them
            assert errors["attr_err"] == pytest.approx(0.0), cls
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["mean_ap"] == pytest.approx(summary["mean_ap"])


def test_simulated_detections_score_lower(synthetic_dataset, synthetic_data, tmp_path):
    ds = synthetic_dataset
    path = tmp_path / "sim.json"
    write_detections(path, simulate_detections(synthetic_data, ds.val_split), synthetic_data.sample_tokens(ds.val_split))
    summary = evaluate_detection(str(path), ds.dataroot, ds.version, ds.val_split, data=synthetic_data)
    assert 0.05 < summary["mean_ap"] < 0.9 and 0.0 < summary["nd_score"] < 0.9
    assert summary["tp_errors"]["attr_err"] > 0.0


def test_command_line(truth_file, synthetic_dataset, tmp_path, capsys):
    ds = synthetic_dataset
    rc = main(["--detection", "--results", str(truth_file), "--dataroot", ds.dataroot, "--version", ds.version,
               "--split", ds.val_split, "--output-dir", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("mAP ") and "NDS" in out and "mAAE" in out
    assert all(cls in out for cls in DETECTION_CLASSES)
    assert (tmp_path / "cli" / "metrics.json").is_file()


def test_format_detection_metrics():
    summary = {"mean_ap": 0.5, "nd_score": 0.6,
               "tp_errors": {"trans_err": 0.3, "scale_err": 0.25, "orient_err": 0.4, "vel_err": 0.3, "attr_err": 0.2},
               "label_aps": {"car": {0.5: 0.7, 1.0: 0.8, 2.0: 0.9, 4.0: 1.0}},
               "label_tp_errors": {"car": {"trans_err": 0.2, "scale_err": 0.15, "orient_err": float("nan"),
                                           "vel_err": 0.3, "attr_err": 0.2}}}
    text = format_detection_metrics(summary)
    assert text.splitlines()[0] == "mAP 0.500  NDS 0.600  mATE 0.300  mASE 0.250  mAOE 0.400  mAVE 0.300  mAAE 0.200"
    assert text.splitlines()[-1].split() == ["car", "0.850", "0.200", "0.150", "nan", "0.300", "0.200"]
