"""Devkit access on the synthetic dataset: tables, splits, frame order, poses, points, GT."""

from __future__ import annotations

import json
import os
import random
import shutil

import numpy as np
import pytest
from nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud

from nutrack.data import Frame, NuScenesData, load_pcd_bin, transform_boxes
from nutrack.data.classes import CLASS_RANGE_ARRAY, category_to_class


def test_devkit_loads_synthetic_dataset(synthetic_dataset):
    ds = synthetic_dataset
    nusc = NuScenes(version=ds.version, dataroot=ds.dataroot, verbose=False)
    for table in ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
                  "log", "scene", "sample", "sample_data", "sample_annotation", "map"):
        assert len(getattr(nusc, table)) > 0, table
    assert sorted(s["name"] for s in nusc.scene) == ["scene-0061", "scene-0103"]
    # the devkit's own accessors work: boxes, velocities, point clouds, linked lists
    sample = nusc.sample[0]
    ann = nusc.get("sample_annotation", sample["anns"][0])
    box = nusc.get_box(ann["token"])
    assert box.wlh[0] == ann["size"][0]
    assert nusc.box_velocity(ann["token"]).shape == (3,)
    pc = LidarPointCloud.from_file(os.path.join(ds.dataroot, nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["filename"]))
    assert pc.points.shape[0] == 4 and pc.points.shape[1] > 1000
    for inst in nusc.instance:
        n, tok = 0, inst["first_annotation_token"]
        while tok:
            rec = nusc.get("sample_annotation", tok)
            n += 1
            last, tok = tok, rec["next"]
        assert last == inst["last_annotation_token"] and n == inst["nbr_annotations"]


def test_splits_and_sample_tokens(synthetic_dataset, synthetic_data):
    d = synthetic_data
    assert d.split_scene_names("mini_train") == ["scene-0061"]
    assert d.split_scene_names("mini_val") == ["scene-0103"]
    toks = d.sample_tokens("mini_val")
    assert len(toks) == 6
    ts = [d.nusc.get("sample", t)["timestamp"] for t in toks]
    assert ts == sorted(ts)
    with pytest.raises(ValueError, match="needs a version ending in 'trainval'"):
        d.split_scene_names("val")
    with pytest.raises(ValueError, match="unknown split 'nope'.*splits.json"):
        d.split_scene_names("nope")


def test_bad_dataroot_or_version(tmp_path, synthetic_dataset):
    with pytest.raises(ValueError, match=r"no nuScenes version 'v1.0-trainval'.*found: v1.0-mini"):
        NuScenesData(synthetic_dataset.dataroot, "v1.0-trainval")
    with pytest.raises(ValueError, match="no version folders found"):
        NuScenesData(tmp_path, "v1.0-mini")


def test_frames_in_timestamp_order_whatever_the_table_order(synthetic_dataset, synthetic_data):
    ds = synthetic_dataset
    nusc = NuScenes(version=ds.version, dataroot=ds.dataroot, verbose=False)
    random.Random(0).shuffle(nusc.sample)  # table order must not matter
    nusc._token2ind["sample"] = {s["token"]: i for i, s in enumerate(nusc.sample)}
    d = NuScenesData(ds.dataroot, ds.version, nusc=nusc)
    scene = next(d.scenes("mini_train"))
    assert [f.sample_token for f in scene.frames] == synthetic_data.sample_tokens("mini_train")
    ts = [f.timestamp for f in scene.frames]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert [f.index for f in scene.frames] == list(range(len(ts)))
    # follows the devkit's linked list as well
    tok = nusc.get("scene", scene.token)["first_sample_token"]
    for f in scene.frames:
        assert f.sample_token == tok
        tok = nusc.get("sample", tok)["next"]


def test_frame_fields(synthetic_data):
    d = synthetic_data
    scene = d.scene("scene-0061")
    assert scene.name == "scene-0061" and len(scene) == 6
    f0, f1 = scene.frames[0], scene.frames[1]
    assert isinstance(f0, Frame) and f0.detections is None
    assert f0.time_lag == 0.0
    assert f1.time_lag == pytest.approx((f1.timestamp - f0.timestamp) * 1e-6) and 0.45 < f1.time_lag < 0.55
    sd = d.nusc.get("sample_data", f1.lidar_token)
    pose = d.nusc.get("ego_pose", sd["ego_pose_token"])
    np.testing.assert_allclose(f1.ego_translation, pose["translation"])
    assert sd["is_key_frame"] and sd["channel"] == "LIDAR_TOP"
    assert os.path.isfile(f1.lidar_path)
    # the LIDAR_TOP calibration: mounted ~1.84 m up, rotated -90 deg
    assert f1.lidar_to_ego[2, 3] == pytest.approx(1.84019)
    np.testing.assert_allclose(f1.lidar_to_global, f1.ego_to_global @ f1.lidar_to_ego)
    np.testing.assert_allclose(f1.global_to_lidar @ f1.lidar_to_global, np.eye(4), atol=1e-9)
    # the ego pose changes from frame to frame (scene-0103's ego drives several metres)
    assert not np.array_equal(scene.frames[-1].ego_to_global, f0.ego_to_global)
    other = d.scene("scene-0103")
    assert np.linalg.norm(other.frames[-1].ego_translation - other.frames[0].ego_translation) > 2.0
    assert d.scene(scene.token).name == "scene-0061"
    with pytest.raises(ValueError, match="no scene"):
        d.scene("scene-9999")


def test_frames_carry_detections(synthetic_dataset, synthetic_data):
    from nutrack.data import load_detections

    split = synthetic_dataset.val_split
    dets = load_detections(synthetic_dataset.detections[split], synthetic_data, split)
    for scene in synthetic_data.scenes(split, dets):
        for f in scene:
            assert f.detections is dets[f.sample_token]
    with pytest.raises(ValueError, match="detections have no entry for sample"):
        list(synthetic_data.scenes(split, {}))


def test_lidar_points_match_devkit_multisweep(synthetic_dataset, synthetic_data):
    d = synthetic_data
    nusc = d.nusc
    scene = d.scene("scene-0061")
    f = scene.frames[3]
    sample = nusc.get("sample", f.sample_token)
    for nsweeps in (1, 2, 3):
        ours = d.lidar_points(f, nsweeps=nsweeps, coordinates="lidar")
        pc, times = LidarPointCloud.from_file_multisweep(nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=nsweeps)
        assert ours.shape == (pc.points.shape[1], 5) and ours.dtype == np.float32
        np.testing.assert_allclose(ours[:, :3], pc.points[:3].T, atol=2e-4)
        np.testing.assert_array_equal(ours[:, 3], pc.points[3])
        np.testing.assert_allclose(ours[:, 4], times[0], atol=1e-6)
    lags = np.unique(d.lidar_points(f, nsweeps=3)[:, 4])
    assert lags[0] == 0.0 and len(lags) == 3 and lags[-1] < 0.6
    # frames: global = lidar_to_global @ lidar
    pl = d.lidar_points(f, nsweeps=2, coordinates="lidar")
    pg = d.lidar_points(f.sample_token, nsweeps=2, coordinates="global")
    pe = d.lidar_points(f, nsweeps=2, coordinates="ego")
    m = f.lidar_to_global
    np.testing.assert_allclose(pg[:, :3], pl[:, :3].astype(np.float64) @ m[:3, :3].T + m[:3, 3], atol=5e-3)
    np.testing.assert_allclose(pe[:, :3], pl[:, :3].astype(np.float64) @ f.lidar_to_ego[:3, :3].T + f.lidar_to_ego[:3, 3], atol=1e-4)
    # the first keyframe of a scene has earlier sweeps too, the chain ends at the scene start
    first = scene.frames[0]
    assert len(np.unique(d.lidar_points(first, nsweeps=10)[:, 4])) == 2
    assert len(np.unique(d.lidar_points(f, nsweeps=3, max_time_lag=0.1)[:, 4])) == 1
    raw = load_pcd_bin(f.lidar_path)
    assert raw.shape[1] == 5 and np.all((raw[:, 4] >= 0) & (raw[:, 4] < 32))
    with pytest.raises(ValueError, match="nsweeps"):
        d.lidar_points(f, nsweeps=0)
    with pytest.raises(ValueError, match="coordinates"):
        d.lidar_points(f, coordinates="camera")


def test_bad_pcd_file(tmp_path):
    p = tmp_path / "bad.pcd.bin"
    np.zeros(7, np.float32).tofile(p)
    with pytest.raises(ValueError, match="not a whole number of 5-float32 points"):
        load_pcd_bin(p)


@pytest.mark.parametrize("nbytes, message", [
    (21, "truncated"),   # np.fromfile silently drops the partial float: read as 1 point
    (0, "empty"),        # np.fromfile reads no points at all
    (None, "missing"),
])
def test_corrupt_pcd_file_is_a_user_error_naming_it(tmp_path, nbytes, message):
    """A damaged lidar file is never read as fewer (or no) points."""
    from nutrack._cli import UserError
    from nutrack.data.nuscenes_io import LidarFileError

    p = tmp_path / "n008__LIDAR_TOP__1.pcd.bin"
    if nbytes is not None:
        p.write_bytes(np.arange(nbytes // 4 + 1, dtype=np.float32).tobytes()[:nbytes])
    with pytest.raises(LidarFileError, match=message) as info:
        load_pcd_bin(p)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert str(p) in str(info.value)
    np.arange(10, dtype=np.float32).tofile(p)  # two whole points read fine
    assert load_pcd_bin(p).shape == (2, 5)
    with pytest.raises(LidarFileError, match="not a regular file"):
        load_pcd_bin(tmp_path)


def test_num_lidar_pts_are_the_points_inside_each_box(synthetic_data):
    """The annotations' num_lidar_pts equal a recount with nutrack.ops on the stored points."""
    from nutrack.ops import points_in_boxes_all

    d = synthetic_data
    checked = 0
    for split in ("mini_train", "mini_val"):
        for scene in d.scenes(split):
            for f in scene:
                sample = d.nusc.get("sample", f.sample_token)
                anns = [d.nusc.get("sample_annotation", t) for t in sample["anns"]]
                from nutrack.data import boxes_from_records

                boxes = boxes_from_records(anns)
                pts = d.lidar_points(f, coordinates="lidar")
                boxes_lidar, _ = transform_boxes(boxes, f.global_to_lidar)
                counts = np.asarray(points_in_boxes_all(pts[:, :3], boxes_lidar)).sum(axis=0)
                np.testing.assert_array_equal(counts, [a["num_lidar_pts"] for a in anns])
                checked += len(anns)
    assert checked > 50


def test_ground_truth_arrays_and_eval_filter(synthetic_data):
    d = synthetic_data
    tok = d.sample_tokens("mini_train")[2]
    gt = d.ground_truth(tok)
    sample = d.nusc.get("sample", tok)
    tracked = [d.nusc.get("sample_annotation", t) for t in sample["anns"]]
    tracked = [a for a in tracked if category_to_class(a["category_name"]) >= 0]
    assert len(gt) == len(tracked)
    assert gt.boxes.dtype == np.float32 and gt.velocities.shape == (len(gt), 2)
    assert gt.instance_tokens.tolist() == [a["instance_token"] for a in tracked]
    assert gt.classes.tolist() == [category_to_class(a["category_name"]) for a in tracked]
    np.testing.assert_allclose(gt.velocities, [d.nusc.box_velocity(a["token"])[:2] for a in tracked], rtol=1e-5)
    kept = d.ground_truth(tok, eval_filter=True)
    ego = d.scene("scene-0061").frames[2].ego_translation
    dist = np.hypot(gt.boxes[:, 0] - ego[0], gt.boxes[:, 1] - ego[1])
    expected = (dist < CLASS_RANGE_ARRAY[gt.classes]) & (gt.num_pts > 0)
    assert kept.annotation_tokens.tolist() == gt.annotation_tokens[expected].tolist()
    assert 0 < len(kept) < len(gt)


def test_custom_splits_json(tmp_path, synthetic_dataset):
    ds = synthetic_dataset
    root = tmp_path / "root"
    shutil.copytree(os.path.join(ds.dataroot, ds.version), root / "v1.0-custom")
    shutil.copytree(os.path.join(ds.dataroot, "maps"), root / "maps")
    with pytest.raises(ValueError, match="no .*splits.json"):
        NuScenesData(root, "v1.0-custom").split_scene_names("everything")
    (root / "v1.0-custom" / "splits.json").write_text(json.dumps({"everything": ["scene-0103", "scene-0061"],
                                                                   "ghosts": ["scene-4242"]}))
    d = NuScenesData(root, "v1.0-custom")
    assert d.split_scene_names("everything") == ["scene-0103", "scene-0061"]
    assert len(d.sample_tokens("everything")) == 12
    with pytest.raises(ValueError, match="defines everything, ghosts"):
        d.split_scene_names("other")
    with pytest.raises(ValueError, match="none of the 1 scenes of split 'ghosts'"):
        d.split_scene_names("ghosts")
