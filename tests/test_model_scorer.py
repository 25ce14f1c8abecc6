"""The learned scorer's checkpoint loading (one-line errors for unusable files, also through
``python -m nutrack.track``), its thread setting scoped to its own calls, and the scorer
contract in a leaf module (no import cycle between nutrack.model and nutrack.tracking)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nutrack._cli import UserError
from nutrack.model import CHECKPOINT_FORMAT, AssociationNet, ModelConfig, load_model, load_scorer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkpoint(path, weights_hidden=64, config_hidden=64):
    """A checkpoint as nutrack.train writes it (the parts the tracker reads)."""
    torch.manual_seed(0)
    ck = {"format": CHECKPOINT_FORMAT, "model": AssociationNet(ModelConfig(hidden=weights_hidden)).state_dict(),
          "model_config": ModelConfig(hidden=config_hidden).to_dict(), "data": {"nsweeps": 1}}
    torch.save(ck, path)
    return path


@pytest.fixture
def bad_checkpoints(tmp_path):
    whole = _checkpoint(tmp_path / "good.pt").read_bytes()
    files = {"random": os.urandom(4096), "json": b'{"format": "nutrack.model/1"}', "empty": b"",
             "truncated": whole[:len(whole) // 2]}
    paths = {name: tmp_path / f"{name}.pt" for name in files}
    for name, data in files.items():
        paths[name].write_bytes(data)
    paths["width"] = _checkpoint(tmp_path / "width.pt", weights_hidden=16)
    paths["foreign"] = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, paths["foreign"])  # someone else's checkpoint
    return paths


KINDS = ("random", "json", "empty", "truncated", "width", "foreign")


@pytest.mark.parametrize("kind", KINDS)
def test_unusable_checkpoint_is_a_user_error_naming_the_file(bad_checkpoints, kind):
    path = str(bad_checkpoints[kind])
    with pytest.raises(UserError) as info:
        load_scorer(path)
    message = str(info.value)
    assert path in message and "\n" not in message
    assert isinstance(info.value, ValueError)  # the tracker factory reports ValueErrors as bad arguments


@pytest.mark.parametrize("kind", KINDS)
def test_track_cli_with_an_unusable_checkpoint_is_one_line(bad_checkpoints, tmp_path, capsys, kind):
    from nutrack import track

    out = tmp_path / "tracks.json"
    before = sorted(os.listdir(tmp_path))
    rc = track.main(["--method", "learned", "--checkpoint", str(bad_checkpoints[kind]), "--out", str(out), "--quiet"])
    assert rc == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad_checkpoints[kind]) in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == before


def test_a_good_checkpoint_loads(tmp_path):
    model, ck = load_model(str(_checkpoint(tmp_path / "good.pt")))
    assert model.config.hidden == 64 and not model.training and ck["format"] == CHECKPOINT_FORMAT


def _blas_threads():
    from nutrack.model.threads import _blas_controllers

    return {lib.num_threads for lib in _blas_controllers()}


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_scorer_threads_are_scoped_to_its_calls(tmp_path, engine):
    """load_scorer leaves the thread counts alone; the scorer runs its network with its own (torch's
    intra-op threads, or the BLAS threads of the numba engine) and puts the caller's back."""
    from nutrack.data import Detections
    from nutrack.model.threads import _blas_controllers
    from nutrack.scoring import FrameContext, TrackView

    before = torch.get_num_threads()
    blas_before = [lib.num_threads for lib in _blas_controllers()]
    torch.set_num_threads(2)
    for lib in _blas_controllers():
        lib.set_num_threads(2)
    try:
        scorer = load_scorer(str(_checkpoint(tmp_path / "good.pt")), threads=1, engine=engine)
        assert torch.get_num_threads() == 2 and _blas_threads() == {2}
        seen = []
        count = torch.get_num_threads if engine == "torch" else _blas_threads
        encode = scorer._net.encode
        scorer._net.encode = lambda obj: (seen.append(count()), encode(obj))[1]
        boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [1, 0, 0, 4, 2, 1.5, 0]], np.float32)
        one = np.ones(2)
        tracks = TrackView(ids=np.arange(2), classes=np.zeros(2, np.int64), boxes=boxes,
                           velocities=np.zeros((2, 2), np.float32), scores=one.astype(np.float32), hits=one,
                           age=one, time_since_update=one, confirmed=one.astype(bool))
        det = Detections(boxes, np.zeros((2, 2), np.float32), np.ones(2, np.float32), np.zeros(2, np.int64))
        m = scorer(tracks, det, FrameContext(timestamp=0.5, time_lag=0.5, index=1))
        assert m.shape == (2, 2) and seen and all(c in (1, {1}) for c in seen)
        assert torch.get_num_threads() == 2 and _blas_threads() == {2}
    finally:
        torch.set_num_threads(before)
        for lib, n in zip(_blas_controllers(), blas_before):
            lib.set_num_threads(n)


def test_model_does_not_import_tracking():
    """The scorer contract lives in the leaf nutrack.scoring: importing the model loads none of
    nutrack.tracking (which imports nutrack.model for the learned method)."""
    code = ("import sys, nutrack.model; "
            "print(sorted(m for m in sys.modules if m.startswith('nutrack.tracking')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout


def test_one_scorer_contract():
    import nutrack.scoring
    import nutrack.tracking
    from nutrack.model import LearnedScorer

    assert nutrack.tracking.Scorer is nutrack.scoring.Scorer
    assert nutrack.tracking.FrameContext is nutrack.scoring.FrameContext
    assert issubclass(LearnedScorer, nutrack.scoring.Scorer)
