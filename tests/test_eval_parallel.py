"""The devkit's evaluation with its classes in parallel processes equals the serial devkit,
on a perfect result, a noisy one and a real tracker's, in the summary AND the details."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nutrack.data import Tracks, load_detections, write_tracking_results
from nutrack.eval import evaluate_tracking

pytest.importorskip("motmetrics")


def _ground_truth_tracks(data, split, rng=None):
    """The split's annotations as tracks; with ``rng``: jittered, with swapped ids, dropped
    boxes and random scores (a noisy tracker)."""
    out = {}
    for token in data.sample_tokens(split):
        gt = data.ground_truth(token, eval_filter=True)
        boxes = gt.boxes.copy()
        ids = np.array([str(t) for t in gt.instance_tokens])
        # a score per object (the devkit ranks tracks by their mean score)
        scores = np.array([0.1 + 0.9 * (hash(i) % 1000) / 1000 for i in ids], np.float32)
        keep = np.ones(len(gt), bool)
        if rng is not None and len(gt):
            boxes[:, :2] += rng.normal(0, 0.4, (len(gt), 2)).astype(np.float32)
            scores = rng.uniform(0.05, 1, len(gt)).astype(np.float32)
            keep = rng.uniform(size=len(gt)) > 0.15
            if len(gt) > 1 and rng.uniform() < 0.3:
                ids[[0, 1]] = ids[[1, 0]]
        out[token] = Tracks(boxes[keep], np.nan_to_num(gt.velocities[keep]), scores[keep], gt.classes[keep],
                            ids[keep])
    return out


def _filter_tracks(dataset, data, split):
    from nutrack.tracking import make_tracker, track_scenes

    dets = load_detections(dataset.detections[split], data, split)
    return track_scenes(make_tracker("filter"), data.scenes(split, dets), progress=False).results


@pytest.mark.parametrize("kind", ["perfect", "noisy", "filter"])
def test_parallel_classes_give_the_serial_metrics(synthetic_dataset, synthetic_data, tmp_path, kind):
    ds, data, split = synthetic_dataset, synthetic_data, synthetic_dataset.val_split
    tracks = {"perfect": lambda: _ground_truth_tracks(data, split),
              "noisy": lambda: _ground_truth_tracks(data, split, np.random.default_rng(3)),
              "filter": lambda: _filter_tracks(ds, data, split)}[kind]()
    path = tmp_path / "tracks.json"
    write_tracking_results(path, tracks, data.sample_tokens(split), keep_top=True)
    outputs = {}
    for workers in (1, 3):
        out = tmp_path / f"eval{workers}"
        summary = evaluate_tracking(str(path), ds.dataroot, ds.version, split, str(out), data=data,
                                    workers=workers)
        details = json.loads((out / "metrics_details.json").read_text())
        outputs[workers] = (json.dumps({k: v for k, v in summary.items() if k != "eval_time"}, sort_keys=True,
                                       default=str), details)
    assert outputs[1][0] == outputs[3][0]
    assert outputs[1][1] == outputs[3][1]
    amota = json.loads(outputs[1][0])["amota"]
    assert (amota > 0.95) if kind == "perfect" else (0 < amota < 0.95)
