"""The on-disk cache of prepared training frames (nutrack.model.frame_cache, used by
nutrack.train.inputs): what it reads back equals what preparation builds, a later run reads
instead of preparing, a damaged file is prepared again, and the key follows the inputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("torch")

from nutrack.model.features import ObjectInputs  # noqa: E402
from nutrack.model.frame_cache import FrameCache, cache_key  # noqa: E402
from nutrack.train import inputs as inputs_module  # noqa: E402
from nutrack.train.config import TrainConfig  # noqa: E402


def _config(ds, frame_cache):
    return TrainConfig(dataroot=ds.dataroot, version=ds.version, train_split=ds.train_split,
                       val_split=ds.val_split, train_detections=ds.detections[ds.train_split],
                       val_detections=ds.detections[ds.val_split], frame_cache=frame_cache)


def _assert_same_scenes(a, b):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert len(sa) == len(sb)
        for ra, rb in zip(sa, sb):
            assert (ra.scene, ra.index, ra.sample_token, ra.timestamp) == (rb.scene, rb.index, rb.sample_token,
                                                                           rb.timestamp)
            np.testing.assert_array_equal(ra.gt_ids, rb.gt_ids)
            for field in ObjectInputs.__slots__:
                x, y = getattr(ra.objects, field), getattr(rb.objects, field)
                assert x.dtype == y.dtype and x.shape == y.shape, field
                np.testing.assert_array_equal(x, y, err_msg=field)


def _assert_same_inputs(a, b):
    _assert_same_scenes(a.train_scenes, b.train_scenes)
    _assert_same_scenes(a.val_scenes, b.val_scenes)
    np.testing.assert_array_equal(a.train_pairs, b.train_pairs)
    np.testing.assert_array_equal(a.val_pairs, b.val_pairs)


@pytest.fixture
def fresh(synthetic_dataset):
    """The inputs prepared in memory, without the cache."""
    return inputs_module.load_inputs(_config(synthetic_dataset, "off"), progress=False)


def test_cached_frames_equal_freshly_prepared_ones_and_are_reused(synthetic_dataset, fresh, tmp_path, monkeypatch):
    config = _config(synthetic_dataset, str(tmp_path / "frames"))
    first = inputs_module.load_inputs(config, progress=False)
    _assert_same_inputs(first, fresh)
    files = sorted(p.name for p in (tmp_path / "frames").rglob("*.npz"))
    assert len(files) == len(fresh.train_scenes) + len(fresh.val_scenes)

    # a second run reads every scene back: nothing is prepared, train's detections are not read
    def fail(*args, **kwargs):
        raise AssertionError("prepared again")

    loaded = []
    real_load = inputs_module.load_detections
    monkeypatch.setattr(inputs_module, "build_scene_frames", fail)
    monkeypatch.setattr(inputs_module, "load_detections", lambda path, *a: loaded.append(path) or real_load(path, *a))
    again = inputs_module.load_inputs(config, progress=False)
    _assert_same_inputs(again, fresh)
    assert loaded == [config.val_detections]  # val is tracked; train's file is not needed


def test_a_damaged_scene_file_is_prepared_again(synthetic_dataset, fresh, tmp_path):
    config = _config(synthetic_dataset, str(tmp_path / "frames"))
    inputs_module.load_inputs(config, progress=False)
    cache = inputs_module.frame_cache_for(config, config.train_detections)
    path = cache.path(fresh.train_scenes[0][0].scene)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    assert cache.read(fresh.train_scenes[0][0].scene) is None
    _assert_same_inputs(inputs_module.load_inputs(config, progress=False), fresh)
    assert cache.read(fresh.train_scenes[0][0].scene) is not None  # written whole again


def test_a_file_of_another_scene_is_not_read_as_this_one(synthetic_dataset, fresh, tmp_path):
    cache = FrameCache(str(tmp_path))
    cache.write("scene-x", fresh.train_scenes[0])
    os.replace(cache.path("scene-x"), cache.path("scene-y"))
    assert cache.read("scene-y") is None and cache.read("scene-x") is None


def test_the_key_follows_the_inputs(synthetic_dataset):
    ds = synthetic_dataset
    det = ds.detections[ds.train_split]
    key = cache_key(ds.dataroot, ds.version, det, 1, 32)
    assert cache_key(ds.dataroot, ds.version, det, 1, 32) == key
    assert cache_key(ds.dataroot, ds.version, det, 1, 16) != key
    assert cache_key(ds.dataroot, ds.version, det, 2, 32) != key
    assert cache_key(ds.dataroot, ds.version, ds.detections[ds.val_split], 1, 32) != key
    st = os.stat(det)
    try:
        os.utime(det, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file was rewritten
        assert cache_key(ds.dataroot, ds.version, det, 1, 32) != key
    finally:
        os.utime(det, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_unwritable_cache_folder_is_a_one_line_error(synthetic_dataset, tmp_path):
    from nutrack.train.errors import TrainingError
    from nutrack._cli import UserError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises((TrainingError, UserError), match="--frame-cache"):
        inputs_module.load_inputs(_config(synthetic_dataset, str(blocker / "frames")), progress=False)
