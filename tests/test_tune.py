"""python -m nutrack.tune: the devkit session equals the devkit, a tiny study runs, a killed
study resumes, two processes share one study, and params files round-trip into the tracker."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")

from nutrack.tracking.params import FilterParams  # noqa: E402
from nutrack.tracking.params_file import read_params_file, write_params_file  # noqa: E402
from nutrack.tracking.search_space import PER_CLASS, SHARED  # noqa: E402


def _args(ds, tmp_path, *extra):
    return ["--dataroot", ds.dataroot, "--version", ds.version, "--split", ds.train_split,
            "--detections", ds.detections[ds.train_split], "--study", f"sqlite:///{tmp_path / 'study.db'}",
            "--out", str(tmp_path / "params.json"), *extra]


def _trials(tmp_path, name=None):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    name = name or optuna.get_all_study_names(storage)[0]
    return optuna.load_study(study_name=name, storage=storage).trials


def test_the_session_scores_exactly_as_the_devkit(synthetic_dataset, synthetic_data, tmp_path):
    from nutrack.data import load_detections, write_tracking_results
    from nutrack.eval import evaluate_tracking
    from nutrack.tracking import make_tracker, track_scenes
    from nutrack.tune.devkit import DevkitSession

    ds, split = synthetic_dataset, synthetic_dataset.train_split
    dets = load_detections(ds.detections[split], synthetic_data, split)
    run = track_scenes(make_tracker("filter"), synthetic_data.scenes(split, dets), progress=False)
    path = str(tmp_path / "tracks.json")
    write_tracking_results(path, run.results, synthetic_data.sample_tokens(split), keep_top=True)
    expected = evaluate_tracking(path, ds.dataroot, ds.version, split, output_dir=str(tmp_path / "eval"))
    session = DevkitSession(ds.dataroot, ds.version, split, nusc=synthetic_data.nusc)
    drop = ("meta", "eval_time")

    def text(summary):
        return json.dumps({k: v for k, v in summary.items() if k not in drop}, sort_keys=True, default=str)

    serial, by_class = session.score(path), session.score(path, workers=3)
    assert text(serial) == text(expected) and text(by_class) == text(expected)
    assert 0 < serial["amota"] <= 1


def test_a_tiny_study_writes_a_params_file_the_tracker_reads(synthetic_dataset, tmp_path, capsys):
    from nutrack.tracking import make_tracker
    from nutrack.tune.__main__ import main

    assert main(_args(synthetic_dataset, tmp_path, "--trials", "3", "--shared")) == 0
    doc = json.loads((tmp_path / "params.json").read_text())
    assert doc["format"] == "nutrack-params/1" and doc["method"] == "filter"
    assert doc["amota"]["best"] >= doc["amota"]["default"] > 0
    assert doc["study"]["finished"] == 3 and (tmp_path / "params_history.png").stat().st_size > 1000
    tuned = read_params_file(str(tmp_path / "params.json"), FilterParams())
    assert tuned.to_dict() == doc["params"]
    tracker = make_tracker("filter", params=str(tmp_path / "params.json"))
    assert tracker.params == tuned
    trials = _trials(tmp_path)
    assert trials[0].user_attrs.get("default") is True  # the defaults are scored first
    assert "samples of split" in capsys.readouterr().out


def test_params_files_round_trip_and_overrides_win(tmp_path):
    from nutrack.track import main as track_main  # noqa: F401 - the CLI accepts --params

    params = FilterParams().with_overrides({"max_age.car": 9, "score_threshold": 0.31, "score_smoothing": 0.5})
    path = str(tmp_path / "p.json")
    write_params_file(path, params, tuned_on={"split": "x"})
    assert read_params_file(path, FilterParams()) == params
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"format": "nutrack-params/1", "params": {"max_age": {"car": 2}}}))
    assert read_params_file(str(partial), FilterParams()).max_age[0] == 2


@pytest.mark.parametrize("content, needle", [
    (b"\xff\xfe", "not readable JSON"),
    (b"[1, 2]", "not a nutrack params file"),
    (b'{"format": "nutrack-params/1", "params": {"max_age": -3}}', "max_age"),
    (b'{"format": "nutrack-params/1", "params": {"bogus": 1}}', "bogus"),
])
def test_malformed_params_files_are_one_line_errors(tmp_path, content, needle):
    from nutrack._cli import UserError

    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=needle):
        read_params_file(str(path), FilterParams())


def test_the_search_space_names_real_parameters_and_holds_the_defaults():
    from nutrack.tune.study import default_trial

    fields = {f.name: f for f in dataclasses.fields(FilterParams)}
    for name in PER_CLASS:
        assert fields[name].metadata.get("per_class"), name
    for name in SHARED:
        assert not fields[name].metadata.get("per_class"), name
    values = default_trial(FilterParams(), per_class=True)
    assert FilterParams().with_overrides(values) == FilterParams()  # defaults lie inside the ranges


def _run_cli(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "nutrack.tune", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


def test_a_killed_study_resumes_where_it_stopped(synthetic_dataset, tmp_path):
    env = {"NUTRACK_TUNE_HEARTBEAT_S": "1", "NUTRACK_TUNE_GRACE_S": "2"}
    proc = _run_cli(_args(synthetic_dataset, tmp_path, "--trials", "200", "--shared"), env)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once the study holds two finished trials
        time.sleep(0.5)
        try:
            if sum(t.state.is_finished() for t in _trials(tmp_path)) >= 2:
                break
        except (IndexError, KeyError, Exception):  # noqa: BLE001 - the database is still being created
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [t for t in _trials(tmp_path) if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(before) >= 2
    time.sleep(2.5)  # past the grace period: the trial that was running is now stale
    done = _run_cli(_args(synthetic_dataset, tmp_path, "--trials", str(len(before) + 2), "--shared"), env)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    after = _trials(tmp_path)
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.number for t in complete[:len(before)]] == [t.number for t in before]  # kept, not redone
    assert len([t for t in after if t.state.is_finished() and t.state.name != "FAIL"]) >= len(before) + 2
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in after), [(t.number, t.state.name, t.datetime_start, t.datetime_complete) for t in after]  # the killed one was failed


def test_a_trial_killed_before_its_first_heartbeat_is_failed(tmp_path, monkeypatch):
    """The window the kill test above hits now and then, made certain: a RUNNING trial with no
    heartbeat, older than the grace period, is failed when the study is resumed."""
    import warnings

    from nutrack.tune import study as tune_study

    storage = tune_study._storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Heartbeat ... supposed to be used with optimize"
        study.ask()  # created, never heartbeated: what a kill right after ask() leaves
    tune_study._fail_trials_killed_before_a_heartbeat(study)
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.RUNNING]  # too young
    monkeypatch.setattr(tune_study, "GRACE_S", 0)
    time.sleep(0.05)
    tune_study._fail_trials_killed_before_a_heartbeat(study)
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.FAIL]


def test_two_processes_share_one_study(synthetic_dataset, tmp_path):
    from nutrack.tune.__main__ import main

    assert main(_args(synthetic_dataset, tmp_path, "--trials", "4", "--workers", "2", "--shared")) == 0
    trials = [t for t in _trials(tmp_path) if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) >= 4
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    # both processes opened the one study file and wrote to it (which of them ran the trials
    # depends on how fast the second one starts: on a loaded machine the first may run all four)
    workers = {k for k in study.user_attrs if k.startswith("worker.")}
    assert len(workers) == 2 and {t.user_attrs["pid"] for t in trials} <= {int(k[7:]) for k in workers}


@pytest.mark.parametrize("extra, needle", [
    (["--trials", "0"], "--trials"),
    (["--study", "study.db"], "not a storage URL"),
    (["--prune-fraction", "1.5"], "--prune-fraction"),
    (["--param", "max_age=-1"], "max_age"),
    (["--params", "/nonexistent/p.json"], "does not exist"),
])
def test_bad_arguments_are_one_line_errors(synthetic_dataset, tmp_path, extra, needle):
    args = _args(synthetic_dataset, tmp_path)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    proc = _run_cli(args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "params.json").exists()


def test_tuning_on_val_warns(synthetic_dataset, tmp_path, capsys):
    from nutrack.tune.objective import warn_if_val

    warn_if_val("val")
    warn_if_val("mini_val")
    warn_if_val("mini_train")
    assert capsys.readouterr().err.count("warning") == 2


def test_track_uses_a_params_file_and_param_overrides_it(synthetic_dataset, tmp_path):
    from nutrack.track import main as track_main

    ds, split = synthetic_dataset, synthetic_dataset.val_split
    strict = str(tmp_path / "strict.json")
    write_params_file(strict, FilterParams().with_overrides({"score_threshold": 0.99, "birth_score": 0.99}))
    common = ["--dataroot", ds.dataroot, "--version", ds.version, "--split", split,
              "--detections", ds.detections[split], "--quiet"]

    def boxes(*extra):
        out = tmp_path / f"tracks{len(list(tmp_path.iterdir()))}.json"
        assert track_main([*common, "--out", str(out), *extra]) == 0
        return sum(len(v) for v in json.loads(out.read_text())["results"].values())

    default, tuned = boxes(), boxes("--params", strict)
    overridden = boxes("--params", strict, "--param", "score_threshold=0.2", "--param", "birth_score=0.2")
    assert tuned < default and overridden == default


def test_composition_takes_other_trials_only_for_classes_with_enough_objects():
    from nutrack.tune.study import MIN_TRACKS_TO_COMPOSE, compose_per_class

    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    study = optuna.create_study(direction="maximize")
    for value, car, bus, x in ((0.8, 0.8, 0.5, 0.1), (0.7, 0.9, 0.9, 0.2)):
        study.add_trial(optuna.trial.create_trial(
            params={"score_threshold.car": x, "score_threshold.bus": x, "score_smoothing": x},
            distributions={"score_threshold.car": dist, "score_threshold.bus": dist, "score_smoothing": dist},
            value=value, user_attrs={"amota.car": car, "amota.bus": bus}))
    composed, _ = compose_per_class(study, {"car": MIN_TRACKS_TO_COMPOSE, "bus": MIN_TRACKS_TO_COMPOSE - 1})
    # car from the trial that scored cars best, bus (too few objects) and shared from the best
    assert composed == {"score_threshold.car": 0.2, "score_threshold.bus": 0.1, "score_smoothing": 0.1}
