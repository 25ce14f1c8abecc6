"""``python -m nutrack.train`` on a tiny embedded dataset: the no-argument command, resume after
a kill equals an uninterrupted run, a 2-process gloo run, non-finite loss, configuration errors."""
import json
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--tiny", "--quiet", "--epochs", "2", "--batch-size", "4", "--eval-every", "0", "--no-baselines"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache for the tiny embedded dataset (generated once for the module)."""
    d = str(tmp_path_factory.mktemp("nutrack_cache"))
    from nutrack.data.synth import SynthConfig, default_dataset

    default_dataset(root=d, cfg=SynthConfig.tiny(train_scenes=2), progress=False)
    return d


@pytest.fixture(autouse=True)
def _restore_threads():
    """In-process runs set torch's thread count (--threads); put it back afterwards."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _env(cache, **extra):
    env = dict(os.environ, NUTRACK_CACHE=cache, NUTRACK_TRAIN_TINY="1", PYTHONWARNINGS="error::UserWarning",
               OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _run(args, cache, cwd, timeout=240, **env):
    return subprocess.run([sys.executable, "-m", "nutrack.train", *args], cwd=cwd, env=_env(cache, **env),
                          capture_output=True, text=True, timeout=timeout)


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_no_argument_command(cache, tmp_path):
    """The documented no-argument command (shrunk by NUTRACK_TRAIN_TINY=1): trains, tracks val,
    prints the devkit metrics of learned, filter and centerpoint, fills the run directory."""
    r = _run([], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "warning" not in r.stderr.lower(), r.stderr[-3000:]
    for m in ("learned", "filter", "centerpoint"):
        assert any(line.startswith(m) for line in r.stdout.splitlines()), r.stdout
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1
    run = tmp_path / "runs" / runs[0]
    for f in ("config.json", "metrics.json", "best.pt", "last.pt", "val/learned.json", "val/filter.json",
              "val/centerpoint.json"):
        assert (run / f).is_file(), f
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(run / "tensorboard"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["comparison"]["learned"]["amota"] <= 1.0
    assert metrics["history"][-1]["amota"] is not None  # AMOTA at the last epoch
    assert metrics["train_frame_pairs_per_s"] > 0


def test_resume_after_kill_equals_uninterrupted(cache, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    r = _run([*FAST, "-o", str(full)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    # killed in the middle of epoch 2 (a step after its last checkpoint), then resumed
    r = _run([*FAST, "-o", str(killed), "--checkpoint-every", "2", "--abort-after-step", "9"], cache, tmp_path)
    assert r.returncode == 75, r.stderr[-3000:]
    assert _state(killed / "last.pt")["train_state"]["epoch"] == 1
    r = _run([*FAST, "--resume", str(killed)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _state(full / "last.pt"), _state(killed / "last.pt")
    assert a["train_state"]["global_step"] == b["train_state"]["global_step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"])
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((killed / "metrics.json").read_text())
    assert ma["comparison"]["learned"]["amota"] == mb["comparison"]["learned"]["amota"]
    for key in ("val_loss", "train_loss", "threshold"):
        assert [h[key] for h in ma["history"]] == [h[key] for h in mb["history"]]


def test_two_process_gloo(cache, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "nutrack.train", *FAST, "--epochs", "1", "--device", "cpu", "-o", str(out)]
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(cache), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "grad strides" not in r.stderr.lower()
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["config"]["world_size"] == 2
    assert _state(out / "last.pt")["train_state"]["global_step"] > 0


def test_nsample_q_below_two_is_an_error(cache, tmp_path, monkeypatch, capsys):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    assert train.main([*FAST, "--nsample-q", "1", "-o", str(tmp_path / "x")]) == 2
    assert "--nsample-q must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_resume_needs_a_checkpoint(cache, tmp_path, monkeypatch, capsys):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    assert train.main(["--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_non_finite_loss_stops_and_keeps_checkpoint(cache, tmp_path, monkeypatch, capsys):
    import nutrack.model
    from nutrack import train

    real = nutrack.model.association_loss
    calls = {"n": 0}

    def bad_after_three(logits, nomatch, batch, *args, **kw):
        loss, p, n = real(logits, nomatch, batch, *args, **kw)
        calls["n"] += 1
        return (loss * float("nan"), p, n) if calls["n"] == 4 else (loss, p, n)

    monkeypatch.setattr(nutrack.model, "association_loss", bad_after_three)
    monkeypatch.setenv("NUTRACK_CACHE", cache)
    out = tmp_path / "nan"
    rc = train.main([*FAST, "--checkpoint-every", "2", "-o", str(out)])
    assert rc == 3
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 1, step 4" in err and "last good checkpoint" in err
    st = _state(out / "last.pt")["train_state"]
    assert st["global_step"] == 2


def test_batches_without_negatives_are_logged_skips(cache, tmp_path, monkeypatch, caplog):
    import numpy as np

    import nutrack.model.data as mdata
    from nutrack import train

    real = mdata.collate

    def only_positives(scenes, pairs, nsample_q, rng, gates=mdata.DEFAULT_GATES):
        b = real(scenes, pairs, nsample_q, rng, gates)
        b["labels"] = np.ones_like(b["labels"])
        return b

    monkeypatch.setattr(mdata, "collate", only_positives)
    monkeypatch.setenv("NUTRACK_CACHE", cache)
    caplog.set_level("WARNING", logger="nutrack.train")
    rc = train.main([*FAST, "--epochs", "1", "-o", str(tmp_path / "skip")])
    assert rc == 0
    assert "batch skipped, no negative pairs" in caplog.text
    m = json.loads((tmp_path / "skip" / "metrics.json").read_text())
    assert m["skipped_batches"] > 0


def test_existing_run_needs_resume(cache, tmp_path, monkeypatch, capsys):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")
    assert train.main([*FAST, "-o", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_checkpoint_drives_track_cli(cache, tmp_path, monkeypatch, capsys):
    """A trained checkpoint through the tracker's entry point: python -m nutrack.track --method learned."""
    from nutrack import track, train
    from nutrack.data.synth import SynthConfig, default_dataset

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    out = tmp_path / "run"
    assert train.main([*FAST, "--epochs", "1", "-o", str(out)]) == 0
    ds = default_dataset(root=cache, cfg=SynthConfig.tiny(train_scenes=2), progress=False)
    res = tmp_path / "learned.json"
    rc = track.main(["--dataroot", ds.dataroot, "--version", ds.version, "--split", ds.val_split,
                     "--detections", ds.detections[ds.val_split], "--method", "learned",
                     "--checkpoint", str(out / "best.pt"), "--out", str(res), "--quiet"])
    assert rc == 0 and res.is_file()
    from nutrack.data import NuScenesData, load_tracking_results

    frames, _ = load_tracking_results(str(res), NuScenesData(ds.dataroot, ds.version), ds.val_split)
    assert sum(len(f) for f in frames.values()) > 0
