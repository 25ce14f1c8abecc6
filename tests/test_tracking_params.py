"""Tracker parameters: defaults, overrides, validation, make_tracker."""
from __future__ import annotations

import pytest

from nutrack.data.classes import TRACKING_CLASSES
from nutrack.tracking import (CenterPointParams, CenterPointTracker, FilterParams, FilterTracker,
                              LearnedModelUnavailable, make_tracker, parse_overrides)


def test_overrides_scalar_per_class_and_one_class():
    p = FilterParams().with_overrides({"max_age": "4", "match_threshold.pedestrian": "-0.2", "assignment": "greedy",
                                       "output_filtered": "false"})
    assert p.max_age == (4,) * 7
    assert p.match_threshold[TRACKING_CLASSES.index("pedestrian")] == -0.2
    assert p.match_threshold[0] == FilterParams().match_threshold[0]
    assert p.assignment == "greedy" and p.output_filtered is False
    p = FilterParams().with_overrides({"motion_model": "cv,cv,cv,cv,cv,ctra,ctra"})
    assert p.motion_model[-1] == "ctra"
    assert CenterPointParams().with_overrides({"hungarian": "1"}).hungarian is True


@pytest.mark.parametrize("overrides, message", [
    ({"nonsense": "1"}, "unknown FilterParams parameter"),
    ({"max_age.dog": "1"}, "unknown class"),
    ({"metric.car": "giou_3d"}, "not per class"),
    ({"max_age": "two"}, "expected int"),
    ({"motion_model": "ukf"}, "motion_model"),
    ({"metric": "l1"}, "metric"),
    ({"assignment": "auction"}, "assignment"),
    ({"gate_distance": "0"}, "gate_distance"),
    ({"score_decay": "1.5"}, "score_decay"),
    ({"max_age": "1,2"}, "expected 7"),
    ({"low_score_threshold": "0.9"}, "low_score_threshold"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        FilterParams().with_overrides(overrides)


def test_parse_overrides():
    assert parse_overrides(["a=1", " b.car = 2 "]) == {"a": "1", "b.car": "2"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_overrides(["oops"])


def test_centerpoint_params_validation():
    with pytest.raises(ValueError, match="max_age"):
        CenterPointParams(max_age=0)
    with pytest.raises(ValueError, match="unknown"):
        CenterPointParams().replace(gate=3)


def test_make_tracker():
    assert isinstance(make_tracker("centerpoint"), CenterPointTracker)
    tr = make_tracker("filter", score_threshold=0.4, overrides={"max_age": 2})
    assert isinstance(tr, FilterTracker)
    assert tr.params.score_threshold == (0.4,) * 7 and tr.params.birth_score == (0.4,) * 7
    assert tr.params.max_age == (2,) * 7
    assert make_tracker("centerpoint", score_threshold=0.3).params.score_threshold == 0.3
    with pytest.raises(ValueError, match="unknown method"):
        make_tracker("sort")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_tracker("filter", score_threshold=1.5)


def test_learned_needs_a_checkpoint_and_the_model(tmp_path, monkeypatch):
    import sys
    import types

    with pytest.raises(ValueError, match="--checkpoint"):
        make_tracker("learned")
    with pytest.raises(ValueError, match="does not exist"):
        make_tracker("learned", checkpoint=str(tmp_path / "none.pt"))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "nutrack.model", None)  # as if the package were absent
    with pytest.raises(LearnedModelUnavailable, match="nutrack.model"):
        make_tracker("learned", checkpoint=str(ckpt))
    monkeypatch.setitem(sys.modules, "nutrack.model", types.ModuleType("nutrack.model"))  # no load_scorer
    with pytest.raises(LearnedModelUnavailable, match="load_scorer"):
        make_tracker("learned", checkpoint=str(ckpt))


def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f"`{v}`"
    return f"{v:g}" if isinstance(v, float) else str(v)


@pytest.mark.parametrize("cls", [CenterPointParams, FilterParams])
def test_docs_list_every_parameter_with_its_default(cls):
    import dataclasses
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "tracking.md").read_text()
    section = doc.split(f"#### `{cls.__name__}`", 1)[1].split("\n#", 1)[0]
    p = cls()
    for f in dataclasses.fields(p):
        rows = [line for line in section.splitlines() if line.startswith(f"| `{f.name}` |")]
        assert rows, f"docs/tracking.md has no table row for {cls.__name__}.{f.name}"
        value = getattr(p, f.name)
        cells = [c.strip() for c in rows[0].strip("|").split("|")][1:]
        expected = [_fmt(v) for v in value] if f.metadata.get("per_class") else [_fmt(value)]
        assert cells[:len(expected)] == expected, (f.name, cells, expected)
