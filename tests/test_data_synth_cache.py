"""The embedded-default cache: keyed on the generator's code, trusted only when every file
has its recorded size, and cleaned of the hidden folders killed generations leave."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from nutrack.data.synth import SynthConfig, build, default_dataset, generate_dataset

SMALL = SynthConfig.tiny(keyframes=2, azimuth_steps=16)


def _only_folder(root):
    (folder,) = [p for p in glob.glob(os.path.join(root, "synth-*")) if os.path.isdir(p)]
    return folder


def test_complete_json_records_every_file_with_its_size(tmp_path):
    ds = default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    folder = _only_folder(tmp_path)
    with open(os.path.join(folder, "COMPLETE.json")) as f:
        files = json.load(f)["files"]
    on_disk = {os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs}
    assert set(files) == on_disk - {"COMPLETE.json"}
    assert all(files[rel] == os.path.getsize(os.path.join(folder, rel)) for rel in files)
    assert os.path.relpath(ds.detections["mini_val"], folder) in files


def _first_cloud(folder):
    return sorted(glob.glob(os.path.join(folder, "nuscenes", "samples", "LIDAR_TOP", "*.pcd.bin")))[0]


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)  # a partial float, as a killed copy leaves


def _empty(path):
    open(path, "wb").close()


@pytest.mark.parametrize("damage", [_truncate, _empty, os.remove])
@pytest.mark.parametrize("which", ["cloud", "detections"])
def test_a_damaged_cache_is_regenerated(tmp_path, capsys, damage, which):
    first = default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    folder = _only_folder(tmp_path)
    victim = _first_cloud(folder) if which == "cloud" else first.detections["mini_train"]
    size = os.path.getsize(victim)
    damage(victim)
    capsys.readouterr()
    again = default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    assert again == first
    assert os.path.getsize(victim) == size  # whole again
    err = capsys.readouterr().err
    assert "damaged" in err and os.path.relpath(victim, folder) in err  # says which file


def test_an_unreadable_complete_json_is_regenerated(tmp_path, capsys):
    first = default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    marker = os.path.join(_only_folder(tmp_path), "COMPLETE.json")
    with open(marker, "w") as f:
        f.write("{ truncated")
    assert default_dataset(str(tmp_path), cfg=SMALL, progress=False) == first
    assert "COMPLETE.json is unreadable" in capsys.readouterr().err
    with open(marker) as f:
        assert json.load(f)["files"]


def _leftover(root, name):
    path = os.path.join(root, name)
    os.makedirs(os.path.join(path, "nuscenes"))
    with open(os.path.join(path, "nuscenes", "half.pcd.bin"), "wb") as f:
        f.write(b"\0" * 100)
    return path


def test_stale_partial_folders_are_removed_live_ones_kept(tmp_path):
    from nutrack.data.synth import DetectorNoise
    from nutrack.data.synth.cache import cache_folder

    own = os.path.basename(cache_folder(str(tmp_path), SMALL, DetectorNoise()))
    killed_own = _leftover(tmp_path, f".{own}.partial-k1ll3d00")
    killed_other = _leftover(tmp_path, ".synth-0123456789-abcdefabcd.partial-x7y8z9w0")
    older_nutrack = _leftover(tmp_path, ".synth-g1-0a1b2c3d4e.q1w2e3r4")  # before the .partial- names
    live = _leftover(tmp_path, ".synth-feedfacefe-1234567890.partial-l1v3l1v3")
    unrelated = _leftover(tmp_path, ".something-else.partial-keepme00")
    with open(tmp_path / "synth-feedfacefe-1234567890.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a generation in progress (another open file: a conflict)
        default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    for path in (killed_own, killed_other, older_nutrack):
        assert not os.path.exists(path), path
    for path in (live, unrelated):
        assert os.path.isdir(path), path


def test_a_killed_generation_is_cleaned_up_by_the_next(tmp_path):
    """SIGKILL a real generation halfway; the next generation in that cache (of any
    configuration) removes the hidden folder it left."""
    script = ("import sys; from nutrack.data.synth import SynthConfig, default_dataset; "
              "default_dataset(sys.argv[1], cfg=SynthConfig.tiny(keyframes=40, sweeps_per_keyframe=4), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    try:
        deadline = time.time() + 120
        while not glob.glob(str(tmp_path / ".synth-*" / "nuscenes" / "*" / "LIDAR_TOP" / "*.pcd.bin")):
            assert proc.poll() is None and time.time() < deadline, "the generation ended before it could be killed"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert glob.glob(str(tmp_path / ".synth-*"))  # what a killed run leaves
    default_dataset(str(tmp_path), cfg=SMALL, progress=False)
    assert not glob.glob(str(tmp_path / ".synth-*"))
    assert len(glob.glob(str(tmp_path / "synth-*" / "COMPLETE.json"))) == 1


def test_the_key_follows_the_generator_source(tmp_path):
    """Editing any generator module changes the cache folder; nobody has to bump a version."""
    from nutrack.data.synth import DetectorNoise, cache, fingerprint

    data_dir = os.path.dirname(os.path.dirname(fingerprint.__file__))
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = fingerprint.source_fingerprint(str(copy))
    assert fingerprint.source_fingerprint(str(copy)) == base
    with open(copy / "synth" / "world.py", "a") as f:
        f.write("\n# an edit\n")
    assert fingerprint.source_fingerprint(str(copy)) != base
    assert fingerprint.source_fingerprint(data_dir) == fingerprint.generator_fingerprint()
    folder = cache.cache_folder(str(tmp_path), SMALL, DetectorNoise())
    assert os.path.basename(folder).startswith("synth-" + fingerprint.generator_fingerprint()[:10] + "-")
    ds = build(str(tmp_path / "built"), SMALL, progress=False)
    with open(os.path.join(os.path.dirname(ds.dataroot), "COMPLETE.json")) as f:
        assert json.load(f)["generator"] == fingerprint.generator_fingerprint()


@pytest.mark.parametrize("write", ["build", "generate_dataset"])
def test_a_failed_generation_leaves_nothing(tmp_path, monkeypatch, write):
    """build and generate_dataset share one write-then-rename: an error halfway removes the
    hidden folder and leaves the target absent."""
    from nutrack.data.synth import output

    def fail_halfway(root, cfg, progress):
        with open(os.path.join(root, "some.pcd.bin"), "wb") as f:
            f.write(b"x")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(output, "generate_into", fail_halfway)
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="killed halfway"):
        (build if write == "build" else generate_dataset)(str(target), SMALL, progress=False)
    assert os.listdir(tmp_path) == []
