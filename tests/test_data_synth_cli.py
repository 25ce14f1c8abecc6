"""``python -m nutrack.data.synth``: every mistake is one line on stderr, exit code 2 and no
output, before any work; explicit options are honoured with ``--tiny`` too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nutrack.data.synth import main

PREFIX = "python -m nutrack.data.synth: error: "
# the cheapest generation that still has both splits
FAST = ["--tiny", "--keyframes", "2", "--azimuth-steps", "16", "--quiet"]


def _fails_cleanly(capsys, tmp_path, argv, *needles):
    """main(argv) exits 2 with one line on stderr naming ``needles``, and writes nothing."""
    before = sorted(os.listdir(tmp_path))
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # no output folder, no hidden partial one
    return lines[0]


@pytest.mark.parametrize("option, value, needle", [
    ("--sweeps", "-1", "--sweeps: sweeps_per_keyframe must be >= 0, got -1"),
    ("--azimuth-steps", "0", "--azimuth-steps: azimuth_steps must be >= 8, got 0"),
    ("--density", "-1", "--density: density must be positive, got -1.0"),
    ("--density", "nan", "--density: density must be a finite number, got nan"),
    ("--keyframes", "0", "--keyframes: keyframes must be >= 2, got 0"),
    ("--keyframes", "1", "--keyframes: keyframes must be >= 2, got 1"),
    ("--train-scenes", "-2", "--train-scenes: train_scenes must be >= 0, got -2"),
    ("--val-scenes", "3", "--val-scenes: v1.0-mini has at most 8 mini_train and 2 mini_val scenes"),
])
def test_bad_settings_are_one_line_errors(tmp_path, capsys, option, value, needle):
    _fails_cleanly(capsys, tmp_path, ["--out", str(tmp_path / "out"), *FAST, option, value], needle)


@pytest.mark.parametrize("tiny", [True, False])
def test_more_scenes_than_a_named_mini_split_has_is_rejected(tmp_path, capsys, tiny):
    # v1.0-mini's named splits hold 8 and 2 scenes; asking for 100 used to give 8 silently
    argv = ["--out", str(tmp_path / "out"), "--train-scenes", "100",
            *(FAST if tiny else ["--quiet", "--version", "v1.0-mini"])]
    line = _fails_cleanly(capsys, tmp_path, argv, "v1.0-mini has at most 8 mini_train and 2 mini_val scenes")
    assert "v1.0-trainval" in line  # says how to get more


def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _fails_cleanly(capsys, tmp_path, ["--out", str(tmp_path / "file" / "out"), *FAST], "--out", "is a file")
    _fails_cleanly(capsys, tmp_path, ["--out", str(tmp_path / "file" / "missing" / "out"), *FAST], "is a file")
    _fails_cleanly(capsys, tmp_path, ["--out", str(tmp_path / "file"), *FAST], "not an empty folder")


def test_out_under_a_read_only_folder(tmp_path, capsys, monkeypatch):
    """Checked before the work. The tests may run as root, who may write anywhere, so the
    folder is made read-only for the permission check itself."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.path.abspath(p) == str(ro)
                        else real_access(p, mode, **kw))
    _fails_cleanly(capsys, tmp_path, ["--out", str(ro / "out"), *FAST], "--out", "no permission to write")
    _fails_cleanly(capsys, tmp_path, ["--out", str(ro / "missing" / "out"), *FAST], "no permission to write")
    assert os.listdir(ro) == []


def test_simulate_output_checked_first(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["--simulate", "--dataroot", str(tmp_path / "no-such-dataset"), "--split", "mini_val", "--quiet"]
    _fails_cleanly(capsys, tmp_path, [*argv, "--out", str(tmp_path / "file" / "det.json")], "--out", "is a file")
    _fails_cleanly(capsys, tmp_path, [*argv, "--out", str(tmp_path / "det.json")], "no-such-dataset")
    _fails_cleanly(capsys, tmp_path, ["--simulate", "--out", str(tmp_path / "det.json")], "--simulate needs")


def test_missing_parents_are_created(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "out"
    assert main(["--out", str(out), *FAST]) == 0
    assert (out / "COMPLETE.json").is_file()


def test_tiny_honours_the_options_given(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--out", str(out), *FAST, "--density", "0.3", "--sweeps", "0", "--val-scenes", "0"]) == 0
    with open(out / "COMPLETE.json") as f:
        info = json.load(f)
    cfg = info["config"]
    assert (cfg["density"], cfg["keyframes"], cfg["sweeps_per_keyframe"], cfg["azimuth_steps"]) == (0.3, 2, 0, 16)
    assert (cfg["train_scenes"], cfg["val_scenes"]) == (1, 0)  # the tiny base where nothing was given
    assert info["stats"]["clouds"] == 2


def test_python_dash_m_entry_point(tmp_path):
    """The package's __main__: one line, exit 2, no traceback, no runpy warning."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "nutrack.data.synth", "--out", str(out), "--sweeps", "-1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [PREFIX + "--sweeps: sweeps_per_keyframe must be >= 0, got -1"]
    assert not out.exists()
