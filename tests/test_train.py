"""``python -m nutrack.train`` on a tiny embedded dataset: the no-argument command, resume after
a kill equals an uninterrupted run, a 2-process gloo run, non-finite loss, configuration errors,
and the one-line errors (exit code 2, no output) for what a user can get wrong."""
import errno
import json
import os
import signal
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
def _threads_unchanged():
    """In-process runs use --threads (and the scorer its own count) for their own work only:
    torch's thread count is the caller's again afterwards."""
    n = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == n


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


def _one_line_error(capsys_or_stderr, *needles):
    """The stderr of a failed command: exactly one line, ``nutrack.train: error: ...``, holding
    every needle."""
    err = capsys_or_stderr if isinstance(capsys_or_stderr, str) else capsys_or_stderr.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


#: runs nutrack.train and SIGKILLs itself once the given global step is done (and its
#: checkpoint, if one was due, written): a real kill at a known point
_KILLED_AT_STEP = """
import os, signal, sys
from nutrack.train import main

def kill_after(step):
    def hook(trainer):
        if trainer.state.global_step >= step:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook

sys.exit(main(sys.argv[2:], step_hooks=[kill_after(int(sys.argv[1]))]))
"""


@pytest.fixture(scope="module")
def finished_run(cache, tmp_path_factory):
    """A complete FAST run (2 epochs), shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    r = _run([*FAST, "-o", str(out)], cache, out.parent)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


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


def test_resume_after_kill_equals_uninterrupted(cache, tmp_path, finished_run):
    full, killed = finished_run, tmp_path / "killed"
    # SIGKILLed in the middle of epoch 2 (a step after its last checkpoint), then resumed
    r = subprocess.run([sys.executable, "-c", _KILLED_AT_STEP, "9", *FAST, "-o", str(killed),
                        "--checkpoint-every", "2"], cwd=tmp_path, env=_env(cache), capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    saved = _state(killed / "last.pt")["train_state"]
    assert saved["epoch"] == 1 and 0 < saved["step_in_epoch"] < saved["global_step"] < 9
    r = _run([*FAST, "--resume", str(killed)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"at epoch 2, step {saved['step_in_epoch']}" in r.stderr
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


def test_resume_of_a_complete_run_does_nothing(cache, tmp_path, finished_run):
    """All epochs trained and evaluated: resuming says so, exits 0, retrains and rewrites nothing."""
    files = ("last.pt", "best.pt", "metrics.json")
    before = {f: (finished_run / f).read_bytes() for f in files}
    r = _run([*FAST, "--resume", str(finished_run)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already complete (2 epochs trained" in r.stderr and "resumed" not in r.stderr, r.stderr
    assert any(line.startswith("learned") for line in r.stdout.splitlines()), r.stdout  # the saved table
    assert {f: (finished_run / f).read_bytes() for f in files} == before


def test_resume_after_the_last_epoch_runs_only_the_final_comparison(cache, tmp_path, finished_run):
    """Killed during the final comparison (all epochs trained, no metrics.json): resuming
    evaluates and writes metrics.json, and trains nothing."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "metrics.json").unlink()
    last = (run / "last.pt").read_bytes()
    r = _run([*FAST, "--resume", str(run)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "running the final comparison" in r.stderr and "epoch 3" not in r.stderr, r.stderr
    assert (run / "last.pt").read_bytes() == last
    assert json.loads((run / "metrics.json").read_text())["comparison"]["learned"]["amota"] is not None


def test_the_threshold_in_checkpoints_is_the_last_decided(finished_run):
    history = json.loads((finished_run / "metrics.json").read_text())["history"]
    last, best = _state(finished_run / "last.pt"), _state(finished_run / "best.pt")
    assert last["model_config"]["threshold"] == history[-1]["threshold"] == last["train_state"]["threshold"]
    assert best["model_config"]["threshold"] == history[best["train_state"]["best"]["epoch"] - 1]["threshold"]


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
    import nutrack.train.trainer as trainer
    from nutrack import train

    real = trainer.association_loss
    calls = {"n": 0}

    def bad_after_three(logits, nomatch, batch, *args, **kw):
        loss, p, n = real(logits, nomatch, batch, *args, **kw)
        calls["n"] += 1
        return (loss * float("nan"), p, n) if calls["n"] == 4 else (loss, p, n)

    monkeypatch.setattr(trainer, "association_loss", bad_after_three)
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

    import nutrack.train.trainer as trainer
    from nutrack import train
    from nutrack.model.features import DEFAULT_GATES

    real = trainer.collate

    def only_positives(scenes, pairs, nsample_q, rng, gates=DEFAULT_GATES):
        b = real(scenes, pairs, nsample_q, rng, gates)
        b["labels"] = np.ones_like(b["labels"])
        return b

    monkeypatch.setattr(trainer, "collate", only_positives)
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


def test_checkpoint_drives_track_cli(cache, tmp_path, finished_run, monkeypatch):
    """A trained checkpoint through the tracker's entry point: python -m nutrack.track --method learned."""
    from nutrack import track
    from nutrack.data.synth import SynthConfig, default_dataset

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    ds = default_dataset(root=cache, cfg=SynthConfig.tiny(train_scenes=2), progress=False)
    res = tmp_path / "learned.json"
    rc = track.main(["--dataroot", ds.dataroot, "--version", ds.version, "--split", ds.val_split,
                     "--detections", ds.detections[ds.val_split], "--method", "learned",
                     "--checkpoint", str(finished_run / "best.pt"), "--out", str(res), "--quiet"])
    assert rc == 0 and res.is_file()
    from nutrack.data import NuScenesData, load_tracking_results

    frames, _ = load_tracking_results(str(res), NuScenesData(ds.dataroot, ds.version), ds.val_split)
    assert sum(len(f) for f in frames.values()) > 0


# ------------------------------------------------------------------------------------------
# one-line errors: exit code 2, one line on stderr, no output
# ------------------------------------------------------------------------------------------


def _bad_checkpoints(tmp_path, real):
    """Files that are not usable checkpoints, by what is wrong with them, made from the real
    checkpoint ``real``."""
    from nutrack.model import AssociationNet, ModelConfig

    whole = real.read_bytes()
    files = {"random": os.urandom(4096), "json": b'{"format": "nutrack.model/1", "model": {}}', "empty": b"",
             "truncated": whole[:len(whole) // 2]}
    # another width: the weights of a hidden=16 network in a checkpoint of a hidden=64 run
    ck = _state(real)
    ck["model"] = AssociationNet(ModelConfig(hidden=16)).state_dict()
    torch.save(ck, tmp_path / "width.pt")
    paths = {"width": tmp_path / "width.pt"}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(data)
    return paths


BAD_CHECKPOINTS = ("random", "json", "empty", "width", "truncated")


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_resume_from_an_unusable_checkpoint_is_one_line(cache, tmp_path, monkeypatch, capsys, finished_run, kind):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    path = _bad_checkpoints(tmp_path, finished_run / "last.pt")[kind]
    before = sorted(os.listdir(tmp_path))
    assert train.main(["--resume", str(path), "--quiet"]) == 2
    _one_line_error(capsys, "nutrack.train: error: --resume", str(path))
    assert sorted(os.listdir(tmp_path)) == before


def test_output_under_a_file_or_unwritable_folder_fails_before_any_work(tmp_path, monkeypatch, capsys):
    import nutrack.data.synth
    from nutrack import train

    def no_work(*a, **k):
        raise AssertionError("the dataset was touched before --output was checked")

    monkeypatch.setattr(nutrack.data.synth, "default_dataset", no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_access = os.access  # root ignores permission bits: make the folder read-only for the check
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(read_only) else real_access(p, mode))
    for out, needle in ((a_file / "run", "is a file"), (a_file, "is a file"), (read_only / "run", "no permission")):
        assert train.main([*FAST, "-o", str(out)]) == 2, out
        _one_line_error(capsys, "nutrack.train: error: --output", needle)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "read_only"] and not os.listdir(read_only)


def test_a_full_disk_is_one_line(cache, tmp_path, monkeypatch, capsys):
    from nutrack import train

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    monkeypatch.setattr(torch, "save", disk_full)
    out = tmp_path / "run"
    assert train.main([*FAST, "--epochs", "1", "-o", str(out)]) == 2
    _one_line_error(capsys, "nutrack.train: error: no space left on the device")
    assert not [n for n in os.listdir(out) if n.endswith((".pt", ".tmp"))]  # no torn or stray checkpoint


def test_a_malformed_option_is_one_line(capsys):
    from nutrack import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--epochs", "two"])
    assert exit_info.value.code == 2
    _one_line_error(capsys, "nutrack.train: error: argument --epochs")


def test_device_bogus_is_one_line(tmp_path, monkeypatch, capsys):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", str(tmp_path / "cache"))  # stays empty: nothing is generated
    assert train.main([*FAST, "--device", "bogus", "-o", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "nutrack.train: error: --device 'bogus'")
    assert not os.listdir(tmp_path)


def test_without_the_train_extra_is_one_line(tmp_path):
    """torch (or tensorboard) not installed: say how to install the [train] extra."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "torch.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    r = _run([], str(tmp_path / "cache"), tmp_path, PYTHONPATH=os.pathsep.join([str(shadow), REPO]))
    assert r.returncode == 2, r.stderr[-3000:]
    _one_line_error(r.stderr, "nutrack.train: error:", 'pip install -e ".[train]"', "torch")
    assert sorted(os.listdir(tmp_path)) == ["shadow"]


def _strict_params(path):
    from nutrack.tracking.params import FilterParams
    from nutrack.tracking.params_file import write_params_file

    write_params_file(str(path), FilterParams().with_overrides({"score_threshold": 0.99, "birth_score": 0.99}))
    return str(path)


def test_a_params_file_sets_the_learned_trackers_life_cycle(cache, tmp_path, finished_run):
    """--params (nutrack.tune's output) reaches the learned tracker of the final comparison;
    --eval-workers evaluates it in parallel processes."""
    out = tmp_path / "strict"
    r = _run([*FAST, "--params", _strict_params(tmp_path / "strict.json"), "--eval-workers", "2", "-o", str(out)],
             cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    strict = json.loads((out / "metrics.json").read_text())["comparison"]["learned"]["recall"]
    default = json.loads((finished_run / "metrics.json").read_text())["comparison"]["learned"]["recall"]
    assert (strict or 0.0) < default


def test_an_unusable_params_file_is_one_line_before_any_work(cache, tmp_path, monkeypatch, capsys):
    from nutrack import train

    monkeypatch.setenv("NUTRACK_CACHE", cache)
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert train.main([*FAST, "--params", str(bad), "-o", str(tmp_path / "x")]) == 2
    _one_line_error(capsys, "bad.json", "not a nutrack params file")
    assert not (tmp_path / "x").exists()


def test_best_checkpoint_holds_the_confidence_head(finished_run):
    """The head is trained on the train rollouts once, stored in best.pt (not last.pt: the
    resumable state stays the association network's) and its statistics in metrics.json."""
    best, last = _state(finished_run / "best.pt"), _state(finished_run / "last.pt")
    assert set(best["confidence"]) == {"config", "state", "stats"} and "confidence" not in last
    stats = json.loads((finished_run / "metrics.json").read_text())["confidence"]
    assert stats == best["confidence"]["stats"] and stats["boxes"] > 0 and 0 < stats["real_fraction"] < 1
    from nutrack.model.scorer import load_scorer

    assert load_scorer(str(finished_run / "best.pt")).confidence is not None


def test_no_confidence_keeps_the_trackers_scores(cache, tmp_path):
    out = tmp_path / "run"
    r = _run([*FAST, "--epochs", "1", "--no-confidence", "-o", str(out)], cache, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "confidence" not in _state(out / "best.pt")
    assert json.loads((out / "metrics.json").read_text())["confidence"] is None


@pytest.mark.parametrize("args, needle", [(["--history", "0"], "--history 0"),
                                          (["--dataroot", "/nowhere", "--version", "v1.0-mini", "--data-seed", "1"],
                                           "--data-seed")])
def test_confidence_and_data_seed_options_are_checked(tmp_path, monkeypatch, capsys, args, needle):
    from nutrack import train

    assert train.main([*FAST, *args, "-o", str(tmp_path / "x")]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "x").exists()
