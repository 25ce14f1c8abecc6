"""Issue 10: tracker parameters outside their meaningful range are rejected in one line
naming the parameter (``nms_threshold=nan`` used to disable NMS silently, and
``score_threshold=inf`` to track nothing with exit code 0)."""
from __future__ import annotations

import pytest

from nutrack._cli import UserError
from nutrack.tracking import CenterPointParams, FilterParams


@pytest.mark.parametrize("overrides, name", [
    ({"nms_threshold": "nan"}, "nms_threshold"),
    ({"nms_threshold": "1.5"}, "nms_threshold"),
    ({"nms_threshold.car": "-0.1"}, "nms_threshold"),
    ({"score_threshold": "inf"}, "score_threshold"),
    ({"score_threshold": "nan"}, "score_threshold"),
    ({"low_score_threshold": "-0.5"}, "low_score_threshold"),
    ({"birth_score": "2"}, "birth_score"),
    ({"match_threshold": "nan"}, "match_threshold"),
    ({"match_threshold2.bus": "-inf"}, "match_threshold2"),
    ({"gate_distance": "inf"}, "gate_distance"),
    ({"pos_noise": "nan"}, "pos_noise"),
    ({"size_smoothing": "nan"}, "size_smoothing"),
    ({"score_smoothing": "nan"}, "score_smoothing"),
    ({"tentative_score_factor": "nan"}, "tentative_score_factor"),
    ({"score_decay": "nan"}, "score_decay"),
])
def test_filter_parameter_out_of_range(overrides, name):
    with pytest.raises(ValueError, match=name) as info:
        FilterParams().with_overrides(overrides)
    assert isinstance(info.value, UserError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, name", [
    ({"score_threshold": "inf"}, "score_threshold"),
    ({"score_threshold": "nan"}, "score_threshold"),
    ({"max_distance": "nan"}, "max_distance"),
    ({"max_distance.car": "inf"}, "max_distance"),
])
def test_centerpoint_parameter_out_of_range(overrides, name):
    with pytest.raises(ValueError, match=name):
        CenterPointParams().with_overrides(overrides)


def test_edges_of_the_ranges_are_accepted():
    p = FilterParams().with_overrides({"nms_threshold": "1.0", "score_threshold": "1", "birth_score": "0",
                                       "low_score_threshold": "0", "match_threshold": "-1"})
    assert p.nms_threshold == (1.0,) * 7
    assert CenterPointParams().with_overrides({"score_threshold": "1", "max_distance": "0"}).max_distance == (0.0,) * 7
