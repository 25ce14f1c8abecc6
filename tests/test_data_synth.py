"""The synthetic dataset generator, the detection simulator and the embedded default."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from nutrack.data import NuScenesData, assign_frame, load_detections
from nutrack.data.classes import CLASS_TO_ID, DETECTION_CLASSES, TRACKING_CLASSES
from nutrack.data.synth import (
    DefaultDataset,
    DetectorNoise,
    SynthConfig,
    build,
    default_dataset,
    generate_dataset,
    main,
    simulate_detections,
)

SMALL = SynthConfig.tiny(keyframes=3, azimuth_steps=180, train_scenes=1, val_scenes=1)


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for f in sorted(filenames):
            if f == "COMPLETE.json":  # holds the generation time
                continue
            p = os.path.join(dirpath, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    a = build(str(tmp_path / "a"), SMALL, progress=False)
    b = build(str(tmp_path / "b"), SMALL, progress=False)
    build(str(tmp_path / "c"), replace(SMALL, seed=1), progress=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")
    assert isinstance(a, DefaultDataset) and a.version == "v1.0-mini"
    assert a.splits == ("mini_train", "mini_val") and set(a.detections) == {"mini_train", "mini_val"}
    assert os.path.isfile(b.detections["mini_val"])


def test_layout_and_realism(synthetic_dataset, synthetic_data):
    root = synthetic_dataset.dataroot
    nusc = synthetic_data.nusc
    assert os.listdir(os.path.join(root, "samples", "LIDAR_TOP"))
    assert os.listdir(os.path.join(root, "sweeps", "LIDAR_TOP"))
    assert all(os.path.isfile(os.path.join(root, m["filename"])) for m in nusc.map)
    # every keyframe has a sweep before it, chained with prev/next and in the sweeps folder
    for sample in nusc.sample:
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        assert sd["filename"].startswith("samples/LIDAR_TOP/") and sd["prev"]
        prev = nusc.get("sample_data", sd["prev"])
        assert not prev["is_key_frame"] and prev["filename"].startswith("sweeps/") and prev["next"] == sd["token"]
        assert prev["timestamp"] < sd["timestamp"]
    anns = nusc.sample_annotation
    pts = np.array([a["num_lidar_pts"] for a in anns])
    assert (pts == 0).any() and (pts > 50).any()  # occluded/far objects and near ones
    cats = {a["category_name"] for a in anns}
    assert {"vehicle.car", "human.pedestrian.adult"} <= cats
    vis = {a["visibility_token"] for a in anns}
    assert len(vis) >= 2
    # objects enter and leave: some instances are annotated on part of the scene only
    n_samples = {s["token"]: s["nbr_samples"] for s in nusc.scene}
    assert any(i["nbr_annotations"] < max(n_samples.values()) for i in nusc.instance)
    # moving objects: annotation velocities of several m/s
    speeds = [np.hypot(*nusc.box_velocity(a["token"])[:2]) for a in anns[:200]]
    assert np.nanmax(speeds) > 3.0


def _attribute_family(category):
    """The attribute prefix the devkit expects for a category ("" for none)."""
    if category in ("vehicle.bicycle", "vehicle.motorcycle"):
        return "cycle."
    if category.startswith("vehicle."):
        return "vehicle."
    if category.startswith("human.pedestrian"):
        return "pedestrian."
    return ""


def test_road_works_and_attributes(tmp_path):
    """Cones, barriers and construction vehicles are annotated with nuScenes' categories and
    sizes, detected under their detection names; every annotation carries one attribute of its
    family (none for cones and barriers), and sitting pedestrians are sitting_lying_down."""
    from collections import Counter

    from nutrack.data.synth.constants import SIZE_WLH
    from nutrack.data.synth.tables import attribute_of
    from nutrack.data.synth.world import WorldObject

    cfg = SynthConfig.tiny(keyframes=3, azimuth_steps=180, density=3.0, train_scenes=3)
    ds = build(str(tmp_path / "d"), cfg, progress=False)
    nusc = NuScenesData(ds.dataroot, ds.version).nusc
    cats = Counter(a["category_name"] for a in nusc.sample_annotation)
    assert cats["movable_object.trafficcone"] >= 10 and cats["movable_object.barrier"] >= 5
    assert cats["vehicle.construction"] >= 1
    for cat in ("movable_object.trafficcone", "movable_object.barrier", "vehicle.construction"):
        wlh = np.array([a["size"] for a in nusc.sample_annotation if a["category_name"] == cat])
        np.testing.assert_allclose(wlh.mean(axis=0), SIZE_WLH[cat], rtol=0.3)
    for a in nusc.sample_annotation:
        names = [nusc.get("attribute", t)["name"] for t in a["attribute_tokens"]]
        family = _attribute_family(a["category_name"])
        assert (len(names) == 1 and names[0].startswith(family)) if family else names == [], (a["category_name"], names)
    with open(ds.detections[ds.val_split]) as f:
        boxes = [b for v in json.load(f)["results"].values() for b in v]
    names = {b["detection_name"] for b in boxes}
    assert {"traffic_cone", "barrier"} <= names
    assert all(b["attribute_name"] == "" for b in boxes if b["detection_name"] in ("traffic_cone", "barrier"))
    assert all(b["attribute_name"].startswith("pedestrian.") for b in boxes if b["detection_name"] == "pedestrian")
    sitting = WorldObject("human.pedestrian.adult", (0.7, 0.9, 1.2), *np.zeros((4, 1)), sitting=True)
    assert attribute_of(sitting, 0.0) == "pedestrian.sitting_lying_down"


def test_named_trainval_splits(tmp_path):
    cfg = replace(SMALL, version="v1.0-trainval", train_scenes=2, val_scenes=1)
    stats = generate_dataset(str(tmp_path / "tv"), cfg, progress=False)
    assert stats["scenes"] == 3 and stats["clouds"] == 3 * 3 * 2
    d = NuScenesData(tmp_path / "tv", "v1.0-trainval")
    assert d.split_scene_names("train") == ["scene-0001", "scene-0002"]
    assert d.split_scene_names("val") == ["scene-0003"]


def test_custom_version_writes_splits_json(tmp_path):
    cfg = replace(SMALL, version="v1.0-synthetic", train_scenes=1, val_scenes=1)
    ds = build(str(tmp_path / "custom"), cfg, progress=False)
    assert ds.splits == ("synth_train", "synth_val")
    d = NuScenesData(ds.dataroot, ds.version)
    assert len(d.sample_tokens("synth_val")) == 3
    dets = load_detections(ds.detections["synth_val"], d, "synth_val")
    assert len(dets) == 3


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="at most 8 mini_train and 2 mini_val"):
        SynthConfig(version="v1.0-mini", val_scenes=3).validate()
    with pytest.raises(ValueError, match="at most 8 mini_train .* use version v1.0-trainval"):
        SynthConfig(version="v1.0-mini", val_scenes=3).validate()
    with pytest.raises(ValueError, match="at most 700 train and 150 val") as caught:
        SynthConfig(val_scenes=151).validate()
    assert "use a custom version name" in str(caught.value)  # not trainval again: it is trainval
    with pytest.raises(ValueError, match="keyframes"):
        SynthConfig(keyframes=1).validate()
    with pytest.raises(ValueError, match="ground_keep"):
        SynthConfig(ground_keep=2.0).validate()
    with pytest.raises(ValueError, match="density must be a finite number"):
        SynthConfig(density=float("nan")).validate()
    with pytest.raises(ValueError, match="train_scenes must be an integer"):
        SynthConfig(train_scenes=True).validate()
    with pytest.raises(ValueError, match="must not both be 0"):
        SynthConfig(train_scenes=0, val_scenes=0).validate()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not an empty folder"):
        generate_dataset(str(tmp_path / "full"), SMALL, progress=False)


@pytest.mark.parametrize("write", [build, generate_dataset])
def test_both_writers_validate_before_any_work(tmp_path, write):
    """build used to skip validation: 100 mini_train scenes silently gave the 8 there are."""
    from nutrack._cli import UserError

    with pytest.raises(ValueError, match="at most 8 mini_train") as caught:
        write(str(tmp_path / "out"), replace(SMALL, train_scenes=100), progress=False)
    assert isinstance(caught.value, UserError)  # a one-line error on the command line
    assert os.listdir(tmp_path) == []


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["--out", str(out), "--tiny", "--keyframes", "3", "--quiet", "--seed", "3"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "version v1.0-mini" in text and "detections[mini_val]" in text
    assert (out / "COMPLETE.json").is_file() and (out / "detections" / "mini_train.json").is_file()
    # an existing dataset is not overwritten
    assert main(["--out", str(out), "--tiny", "--quiet"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    # --simulate on an existing dataset
    det = tmp_path / "sim.json"
    rc = main(["--simulate", "--dataroot", str(out / "nuscenes"), "--version", "v1.0-mini", "--split", "mini_val",
               "--out", str(det), "--quiet", "--seed", "5"])
    assert rc == 0 and det.is_file()
    d = NuScenesData(out / "nuscenes", "v1.0-mini")
    assert len(load_detections(det, d, "mini_val")) == 3  # --keyframes 3 overrides --tiny's 6


def test_default_dataset_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NUTRACK_CACHE", str(tmp_path / "cache"))
    first = default_dataset(cfg=SMALL, progress=False)
    assert first.dataroot.startswith(str(tmp_path / "cache"))
    marker = os.path.join(os.path.dirname(first.dataroot), "COMPLETE.json")
    mtime = os.stat(marker).st_mtime_ns
    second = default_dataset(cfg=SMALL, progress=False)
    assert second == first and os.stat(marker).st_mtime_ns == mtime
    with open(marker) as f:
        info = json.load(f)
    assert info["config"]["keyframes"] == 3
    d = NuScenesData(first.dataroot, first.version)
    for split, path in first.detections.items():
        assert len(load_detections(path, d, split)) == len(d.sample_tokens(split))
    # a half-written leftover (no completion marker) is replaced
    other = replace(SMALL, seed=9)
    target_root = tmp_path / "root2"
    ds = default_dataset(str(target_root), cfg=other, progress=False)
    folder = os.path.dirname(ds.dataroot)
    os.remove(os.path.join(folder, "COMPLETE.json"))
    ds2 = default_dataset(str(target_root), cfg=other, progress=False)
    assert os.path.isfile(os.path.join(folder, "COMPLETE.json")) and ds2 == ds


# --------------------------------------------------------------------------------------
# detection simulator
# --------------------------------------------------------------------------------------

N_DET = len(DETECTION_CLASSES)
EXACT = DetectorNoise(p_max=(1.0,) * N_DET, pts_bias=1e9, range_decay=1e9, miss_run_prob=(0.0,) * N_DET, pos_sigma=(0.0,) * N_DET,
                      pos_sigma_per_m=0.0, z_sigma=0.0, outlier_prob=0.0, size_log_sigma=(0.0,) * N_DET,
                      yaw_sigma=(0.0,) * N_DET, yaw_sigma_per_m=0.0, heading_flip=(0.0,) * N_DET,
                      vel_sigma=(0.0,) * N_DET, vel_sigma_speed=0.0, vel_sigma_per_m=0.0, attr_error=(0.0,) * N_DET,
                      confusion=(), duplicate_prob=0.0, near_fp_prob=0.0, fp_rate=0.0, fp_sources_per_scene=0)


def tracked(det):
    """The detections of the seven tracking classes (the simulator also detects the other three)."""
    return det.select(det.classes >= 0)


def test_simulator_without_noise_reproduces_the_ground_truth(synthetic_data):
    dets = simulate_detections(synthetic_data, "mini_val", EXACT)
    n_other = 0
    for tok, det in dets.items():
        gt = synthetic_data.ground_truth(tok)
        n_other += len(det) - len(tracked(det))
        det = tracked(det)
        a = assign_frame(det, gt)
        assert a.matched.all() and len(det) == len(gt)
        np.testing.assert_allclose(det.boxes, gt.boxes[a.gt_index], atol=1e-5)
        np.testing.assert_allclose(det.velocities, np.nan_to_num(gt.velocities[a.gt_index]), atol=1e-5)
    assert n_other > 0  # cones, barriers (construction vehicles) detected as well


def test_simulator_mechanisms(synthetic_data):
    flips = simulate_detections(synthetic_data, "mini_val", replace(EXACT, heading_flip=(1.0,) * N_DET))
    confused = simulate_detections(synthetic_data, "mini_val", replace(EXACT, confusion=(("car", "truck", 1.0),)))
    fps = simulate_detections(synthetic_data, "mini_val", replace(EXACT, p_max=(0.0,) * N_DET, fp_rate=20.0))
    n_fp = n_lucky = 0
    for tok in flips:
        gt = synthetic_data.ground_truth(tok)
        flipped = tracked(flips[tok])
        a = assign_frame(flipped, gt)
        dyaw = flipped.boxes[:, 6] - gt.boxes[a.gt_index, 6]
        np.testing.assert_allclose(np.cos(dyaw), -1.0, atol=1e-5)
        assert not (confused[tok].classes == CLASS_TO_ID["car"]).any()
        assert (gt.classes != CLASS_TO_ID["car"]).all() or (confused[tok].classes == CLASS_TO_ID["truck"]).any()
        n_fp += len(fps[tok])
        n_lucky += assign_frame(tracked(fps[tok]), gt).matched.sum()  # a random box may land on an object
    assert n_fp > 5 * len(fps) and n_lucky < 0.2 * n_fp


def test_simulator_misses_run_inside_tracks(synthetic_data):
    """With runs of misses, an object missed in one frame is missed in the next far more often
    than chance (the recall alone) would have it."""
    runs = simulate_detections(synthetic_data, "mini_val", replace(EXACT, miss_run_prob=(0.15,) * N_DET, miss_run_frames=3.0))
    seen = {}  # instance -> detected per frame, in frame order
    for tok, det in runs.items():
        gt = synthetic_data.ground_truth(tok)
        a = assign_frame(tracked(det), gt)
        found = set(a.instance_tokens[a.matched].tolist())
        for inst in gt.instance_tokens.tolist():
            seen.setdefault(inst, []).append(inst in found)
    pairs = [(x, y) for v in seen.values() for x, y in zip(v, v[1:])]
    miss_rate = np.mean([not y for _, y in pairs])
    miss_after_miss = np.mean([not y for x, y in pairs if not x])
    assert 0.05 < miss_rate < 0.6 and miss_after_miss > miss_rate + 0.2


def _lag_one_correlation(dets, data):
    """Correlation of an object's x error in one frame with its x error in the next."""
    last, pairs = {}, []
    for tok, det in dets.items():
        gt = data.ground_truth(tok)
        a = assign_frame(tracked(det), gt)
        err = tracked(det).boxes[a.matched, 0] - gt.boxes[a.gt_index[a.matched], 0]
        now = dict(zip(a.instance_tokens[a.matched].tolist(), err.tolist()))
        pairs += [(last[i], e) for i, e in now.items() if i in last]
        last = now
    return np.corrcoef(np.array(pairs).T)[0, 1]


def test_simulator_errors_persist_with_error_corr(synthetic_data):
    noisy = replace(EXACT, pos_sigma=(0.3,) * N_DET)
    independent = simulate_detections(synthetic_data, "mini_val", noisy)
    persistent = simulate_detections(synthetic_data, "mini_val", replace(noisy, error_corr=0.9))
    assert abs(_lag_one_correlation(independent, synthetic_data)) < 0.3
    assert _lag_one_correlation(persistent, synthetic_data) > 0.6


def test_simulator_attributes(synthetic_data):
    """Without attribute errors every detection carries its object's attribute, and every
    attribute is one the devkit allows for the class (none for cones and barriers)."""
    from nutrack.data.synth.simulator import ATTRIBUTES_OF, detection_truth

    dets = simulate_detections(synthetic_data, "mini_val", EXACT)
    noisy = simulate_detections(synthetic_data, "mini_val", replace(EXACT, attr_error=(0.5,) * N_DET))
    n_wrong = n_with = 0
    for tok, det in dets.items():
        truth = detection_truth(synthetic_data, tok)
        assert sorted(zip(det.names.tolist(), det.attributes.tolist())) == sorted(
            zip([DETECTION_CLASSES[c] for c in truth.classes], truth.attributes.tolist()))
        for name, attr in zip(noisy[tok].names.tolist(), noisy[tok].attributes.tolist()):
            assert (attr in ATTRIBUTES_OF[name]) if ATTRIBUTES_OF[name] else attr == ""
        # the same draws with and without errors: the boxes come in the same order
        np.testing.assert_array_equal(noisy[tok].boxes, det.boxes)
        has = det.attributes != ""
        n_with += int(has.sum())
        n_wrong += int((noisy[tok].attributes[has] != det.attributes[has]).sum())
    assert n_with > 20 and 0.3 < n_wrong / n_with < 0.7


def test_simulator_defaults_are_realistic_and_deterministic(synthetic_data):
    a = simulate_detections(synthetic_data, "mini_train", seed=0)
    b = simulate_detections(synthetic_data, "mini_train", seed=0)
    c = simulate_detections(synthetic_data, "mini_train", seed=1)
    tp_scores, fp_scores, n_gt, n_tp = [], [], 0, 0
    for tok in a:
        np.testing.assert_array_equal(a[tok].boxes, b[tok].boxes)
        np.testing.assert_array_equal(a[tok].scores, b[tok].scores)
        det = a[tok]
        assert np.all(np.diff(det.scores) <= 0)  # sorted by score, like detector outputs
        assert np.all((det.scores > 0) & (det.scores <= 1)) and np.all(det.boxes[:, 3:6] > 0)
        gt = synthetic_data.ground_truth(tok, eval_filter=True)
        det = tracked(det)
        m = assign_frame(det, gt).matched
        tp_scores += det.scores[m].tolist()
        fp_scores += det.scores[~m].tolist()
        n_gt += len(gt)
        n_tp += m.sum()
    assert any(not np.array_equal(a[t].boxes, c[t].boxes) for t in a)
    assert 0.5 < n_tp / n_gt < 1.0  # misses
    assert len(fp_scores) > 0
    assert np.mean(tp_scores) > np.mean(fp_scores) + 0.15  # scores separate, imperfectly
    assert max(fp_scores) > min(tp_scores)
    assert set(np.concatenate([a[t].classes for t in a]).tolist()) <= set(range(len(TRACKING_CLASSES))) | {-1}
    assert set(np.concatenate([a[t].names for t in a]).tolist()) <= set(DETECTION_CLASSES)
