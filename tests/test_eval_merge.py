"""nutrack.eval_merge: the linear merge of per-scene event tables gives the devkit's DataFrame
and mappings, and the devkit's evaluation with it the devkit's metrics, summary and details."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("motmetrics")

from nuscenes.eval.tracking.mot import MOTAccumulatorCustom  # noqa: E402

from nutrack.eval_merge import linear_merge, merge_event_dataframes  # noqa: E402


def _accumulators(rng, n=25):
    accs = []
    for _ in range(n):
        acc = MOTAccumulatorCustom()
        for f in range(int(rng.integers(0, 12))):
            n_o, n_h = int(rng.integers(0, 8)), int(rng.integers(0, 8))
            o = [f"o{i}" for i in rng.choice(20, n_o, replace=False)]
            h = [f"h{i}" for i in rng.choice(20, n_h, replace=False)]
            d = np.where(rng.uniform(size=(n_o, n_h)) < 0.3, rng.uniform(size=(n_o, n_h)), np.nan)
            acc.update(o, h, d, frameid=f)
        accs.append(acc)
    accs.insert(0, MOTAccumulatorCustom())  # empty scenes, first and in between
    accs.insert(7, MOTAccumulatorCustom())
    return accs


@pytest.mark.parametrize("flags", [(True, True, True), (False, True, True), (True, False, False)])
def test_same_frame_and_mappings_as_the_devkit(flags):
    accs = _accumulators(np.random.default_rng(sum(flags)))
    want, want_maps = MOTAccumulatorCustom.merge_event_dataframes(accs, *flags, return_mappings=True)
    got, got_maps = merge_event_dataframes(accs, *flags, return_mappings=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.index) == list(want.index)
    assert got_maps == want_maps
    pd.testing.assert_frame_equal(merge_event_dataframes([]), MOTAccumulatorCustom.merge_event_dataframes([]))


def test_linear_merge_is_undone_after_the_block():
    before = MOTAccumulatorCustom.__dict__["merge_event_dataframes"]
    with linear_merge():
        assert MOTAccumulatorCustom.merge_event_dataframes is merge_event_dataframes
    assert MOTAccumulatorCustom.__dict__["merge_event_dataframes"] is before


def test_devkit_evaluation_unchanged(synthetic_dataset, synthetic_data, tmp_path):
    from test_eval_parallel import _ground_truth_tracks

    from nutrack.data import write_tracking_results
    from nutrack.eval import _import_tracking_eval

    ds, data, split = synthetic_dataset, synthetic_data, synthetic_dataset.val_split
    path = tmp_path / "tracks.json"
    write_tracking_results(path, _ground_truth_tracks(data, split, np.random.default_rng(5)),
                           data.sample_tokens(split), keep_top=True)
    TrackingEval, config_factory = _import_tracking_eval()
    out = {}
    for name in ("devkit", "linear"):
        folder = tmp_path / name
        ev = TrackingEval(config=config_factory("tracking_nips_2019"), result_path=str(path), eval_set=split,
                          output_dir=str(folder), nusc_version=ds.version, nusc_dataroot=ds.dataroot,
                          verbose=False)
        if name == "linear":
            with linear_merge():
                summary = ev.main()
        else:
            summary = ev.main()
        summary.pop("eval_time", None)
        out[name] = (json.dumps(summary, sort_keys=True, default=str),
                     json.loads((folder / "metrics_details.json").read_text()))
    assert out["devkit"] == out["linear"]
    assert 0 < json.loads(out["devkit"][0])["amota"] < 0.95
