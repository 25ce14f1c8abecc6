"""``python -m nutrack.ablate``: the commands it runs, the table (mean and spread over seeds),
resuming finished runs, and one-line errors. The runs themselves are stood in for: a real
ablation trains 18 networks (docs/training.md, "Ablations")."""
import json
import math
import sys

import pytest

from nutrack import ablate


def _metrics(amota, ids, with_baselines=True):
    comp = {"learned": {"amota": amota, "mota": amota - 0.02, "ids": ids, "recall": 0.9}}
    if with_baselines:
        comp["filter"] = {"amota": amota - 0.03, "mota": 0.7, "ids": ids + 4, "recall": 0.85}
        comp["centerpoint"] = {"amota": 0.6, "mota": 0.6, "ids": 50, "recall": 0.7}
    return {"comparison": comp}


def test_summary_means_and_spreads():
    results = {"default": {0: _metrics(0.80, 10), 1: _metrics(0.84, 14), 2: _metrics(0.82, 12)},
               "no-points": {0: _metrics(0.78, 12, False), 1: _metrics(0.76, 16, False)}}
    rows = {r["name"]: r for r in ablate.summarize(results)}
    assert list(rows) == ["default", "no-points", "filter (baseline)", "centerpoint (baseline)"]
    d = rows["default"]
    assert math.isclose(d["amota"], 0.82) and math.isclose(d["amota_std"], 0.02)
    assert d["ids"] == 12 and math.isclose(d["ids_std"], 2.0) and d["seeds"] == [0, 1, 2]
    assert math.isclose(rows["filter (baseline)"]["amota"], 0.79)
    assert math.isclose(rows["no-points"]["amota_std"], math.sqrt(2) * 0.01)
    table = ablate.format_table(list(rows.values()))
    assert "| default | `` | 0.820 ± 0.020 |" in table and "`--no-points`" in table
    assert "0.800, 0.840, 0.820" in table


def test_commands(tmp_path):
    args = ablate.build_parser().parse_args(["--output", str(tmp_path), "--train-args", "--epochs 2"])
    run_dir = str(tmp_path / "softmax-seed1")
    cmd = ablate._command("softmax", 1, run_dir, args)
    assert cmd[:3] == [sys.executable, "-m", "nutrack.train"]
    for part in (["--data-seed", "1"], ["--seed", "1"], ["--normalization", "softmax"], ["--epochs", "2"],
                 ["--eval-every", "0"]):
        assert any(cmd[i:i + len(part)] == part for i in range(len(cmd))), (part, cmd)
    assert "--no-baselines" in cmd and "--resume" not in cmd
    assert "--no-baselines" not in ablate._command("default", 1, run_dir, args)
    (tmp_path / "softmax-seed1").mkdir()
    (tmp_path / "softmax-seed1" / "last.pt").write_bytes(b"")
    assert ablate._command("softmax", 1, run_dir, args)[-1] == "--resume"  # a killed run continues


def test_cli_reads_finished_runs_and_writes_the_tables(tmp_path, monkeypatch, capsys):
    """Finished runs (metrics.json present) are read back, nothing is trained."""
    for v, s, a in (("default", 0, 0.8), ("default", 1, 0.84), ("no-confidence", 0, 0.7), ("no-confidence", 1, 0.72)):
        d = tmp_path / f"{v}-seed{s}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps(_metrics(a, 10, v == "default")))
    monkeypatch.setattr(ablate.subprocess, "call", lambda *a, **k: pytest.fail("trained a finished run"))
    assert ablate.main(["--variants", "default", "no-confidence", "--seeds", "0", "1", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| no-confidence | `--no-confidence` | 0.710 ± 0.014 |" in out
    assert (tmp_path / "ablations.md").read_text().startswith("Seeds 0, 1; mean")
    assert len(json.loads((tmp_path / "ablations.json").read_text())) == 4


def test_a_failed_run_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ablate.subprocess, "call", lambda *a, **k: 1)
    assert ablate.main(["--variants", "softmax", "--seeds", "0", "-o", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("python -m nutrack.ablate")]
    assert len(err) == 1 and "softmax-seed0 failed (exit code 1)" in err[0] and "train.log" in err[0]


@pytest.mark.parametrize("argv, needle", [(["--jobs", "0"], "--jobs must be >= 1"),
                                          (["--variants", "bogus"], "invalid choice")])
def test_bad_options_are_one_line(tmp_path, capsys, argv, needle):
    try:
        rc = ablate.main([*argv, "-o", str(tmp_path / "x")])
    except SystemExit as e:  # argparse's own errors exit from the parser
        rc = e.code
    assert rc == 2 and not (tmp_path / "x").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]

