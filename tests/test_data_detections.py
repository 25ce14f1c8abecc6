"""Detection-file validation (each malformed kind names sample, box and field; nothing is
written), loading, and the tracking-submission writer."""

from __future__ import annotations

import copy
import json
import math
import os

import numpy as np
import pytest

from nutrack.data import (
    Detections,
    SubmissionFormatError,
    Tracks,
    load_detections,
    load_tracking_results,
    write_tracking_results,
)
from nutrack.data.classes import CLASS_TO_ID

TOK_A = "a" * 32
TOK_B = "b" * 32
TOKENS = [TOK_A, TOK_B]


def good_box(token, x=1.0, name="car", score=0.7):
    return {
        "sample_token": token,
        "translation": [x, 2.0, 0.8],
        "size": [1.9, 4.5, 1.6],
        "rotation": [math.cos(0.25), 0.0, 0.0, math.sin(0.25)],
        "velocity": [1.0, -0.5],
        "detection_name": name,
        "detection_score": score,
        "attribute_name": "vehicle.moving",
    }


def good_file():
    return {
        "meta": {"use_camera": False, "use_lidar": True},
        "results": {
            TOK_A: [good_box(TOK_A, x=float(i)) for i in range(5)],
            TOK_B: [good_box(TOK_B), good_box(TOK_B, name="barrier"), good_box(TOK_B, name="pedestrian")],
        },
    }


def write(tmp_path, obj, name="det.json"):
    p = tmp_path / name
    if isinstance(obj, (bytes, str)):
        p.write_bytes(obj if isinstance(obj, bytes) else obj.encode())
    else:
        p.write_text(json.dumps(obj))  # allow_nan: writes NaN / Infinity tokens as Python does
    return str(p)


def mutate(fn):
    d = good_file()
    fn(d)
    return d


def set_field(token, index, field, value):
    def f(d):
        d["results"][token][index][field] = value
    return f


def del_field(token, index, field):
    def f(d):
        del d["results"][token][index][field]
    return f


# (id, file content, expected message fragments)
MALFORMED = [
    ("not-json", '{"meta": {}, "results": {', ["not valid JSON"]),
    ("top-level-list", [1, 2, 3], ["top level must be a JSON object"]),
    ("no-results", {"meta": {}}, ["no 'results' field"]),
    ("no-meta", {"results": {TOK_A: [], TOK_B: []}}, ["no 'meta' field"]),
    ("results-not-dict", {"meta": {}, "results": [1]}, ["'results' must map sample tokens"]),
    ("unknown-sample", mutate(lambda d: d["results"].update({"c" * 32: []})), ["sample 'cccc", "not a sample of"]),
    ("missing-sample", mutate(lambda d: d["results"].pop(TOK_B)), [f"sample '{TOK_B}'", "missing"]),
    ("sample-not-list", mutate(lambda d: d["results"].update({TOK_A: {"x": 1}})), [f"sample '{TOK_A}'", "must be a list of boxes"]),
    ("box-not-object", mutate(lambda d: d["results"][TOK_A].__setitem__(2, [1, 2])),
     [f"sample '{TOK_A}'", "box 2", "must be a JSON object"]),
    ("missing-rotation", mutate(del_field(TOK_A, 3, "rotation")), [f"sample '{TOK_A}'", "box 3", "field 'rotation'", "missing"]),
    ("missing-score", mutate(del_field(TOK_B, 1, "detection_score")), [f"sample '{TOK_B}'", "box 1", "field 'detection_score'", "missing"]),
    ("translation-2", mutate(set_field(TOK_A, 1, "translation", [1.0, 2.0])), ["box 1", "field 'translation'", "list of 3 numbers"]),
    ("velocity-3", mutate(set_field(TOK_B, 0, "velocity", [1.0, 2.0, 0.0])), [f"sample '{TOK_B}'", "box 0", "field 'velocity'", "list of 2 numbers"]),
    ("nan-translation", mutate(set_field(TOK_A, 4, "translation", [float("nan"), 2.0, 0.8])), ["box 4", "field 'translation'", "finite"]),
    ("inf-velocity", mutate(set_field(TOK_A, 0, "velocity", [float("inf"), 0.0])), ["box 0", "field 'velocity'", "finite"]),
    ("string-size", mutate(set_field(TOK_A, 2, "size", ["1.9", 4.5, 1.6])), ["box 2", "field 'size'", "list of 3 numbers"]),
    ("null-in-rotation", mutate(set_field(TOK_A, 2, "rotation", [1.0, None, 0.0, 0.0])), ["box 2", "field 'rotation'", "numbers"]),
    ("negative-size", mutate(set_field(TOK_B, 2, "size", [1.9, -4.5, 1.6])), [f"sample '{TOK_B}'", "box 2", "field 'size'", "positive"]),
    ("zero-size", mutate(set_field(TOK_A, 0, "size", [0.0, 4.5, 1.6])), ["box 0", "field 'size'", "positive"]),
    ("non-unit-quaternion", mutate(set_field(TOK_A, 1, "rotation", [0.5, 0.0, 0.0, 0.5])), ["box 1", "field 'rotation'", "unit quaternion"]),
    ("unknown-class", mutate(set_field(TOK_B, 2, "detection_name", "vehicle.car")), ["box 2", "field 'detection_name'", "unknown class 'vehicle.car'"]),
    ("class-not-string", mutate(set_field(TOK_B, 0, "detection_name", 3)), ["box 0", "field 'detection_name'", "must be a string"]),
    ("score-above-1", mutate(set_field(TOK_A, 3, "detection_score", 1.5)), ["box 3", "field 'detection_score'", "[0, 1]"]),
    ("score-nan", mutate(set_field(TOK_A, 3, "detection_score", float("nan"))), ["box 3", "field 'detection_score'", "[0, 1]"]),
    ("score-string", mutate(set_field(TOK_A, 3, "detection_score", "high")), ["box 3", "field 'detection_score'", "must be a number"]),
    ("token-mismatch", mutate(set_field(TOK_A, 4, "sample_token", TOK_B)), [f"sample '{TOK_A}'", "box 4", "field 'sample_token'", "differs"]),
    ("too-many-boxes", mutate(lambda d: d["results"].update({TOK_A: [good_box(TOK_A)] * 501})), [f"sample '{TOK_A}'", "501 boxes", "500"]),
    # -- issue 10: values no real box can have (documented limits in docs/data.md) -------------
    ("translation-1e300", mutate(set_field(TOK_A, 1, "translation", [1e300, 2.0, 0.8])), ["box 1", "field 'translation'", "100000"]),
    ("translation-1e39", mutate(set_field(TOK_A, 2, "translation", [1.0, 1e39, 0.8])), ["box 2", "field 'translation'", "100000"]),
    ("translation-1e20", mutate(set_field(TOK_B, 0, "translation", [1e20, 2.0, 0.8])), [f"sample '{TOK_B}'", "box 0", "field 'translation'"]),
    ("translation-1e30", mutate(set_field(TOK_A, 4, "translation", [1.0, 2.0, -1e30])), ["box 4", "field 'translation'"]),
    ("size-1e300", mutate(set_field(TOK_A, 0, "size", [1e300, 4.5, 1.6])), ["box 0", "field 'size'", "[0.001, 1000]"]),
    ("size-1e-300", mutate(set_field(TOK_A, 3, "size", [1.9, 1e-300, 1.6])), ["box 3", "field 'size'", "[0.001, 1000]"]),
    ("size-2**63", mutate(set_field(TOK_B, 2, "size", [1.9, 4.5, 2 ** 63])), [f"sample '{TOK_B}'", "box 2", "field 'size'"]),
    ("velocity-1e300", mutate(set_field(TOK_A, 1, "velocity", [0.0, -1e300])), ["box 1", "field 'velocity'", "1000"]),
    # -- issue 10: JSON booleans are not numbers -------------------------------------------------
    ("bool-translation", mutate(set_field(TOK_A, 1, "translation", [True, False, True])), ["box 1", "field 'translation'", "true"]),
    ("bool-in-size", mutate(set_field(TOK_B, 1, "size", [1.9, True, 1.6])), [f"sample '{TOK_B}'", "box 1", "field 'size'"]),
    ("bool-score", mutate(set_field(TOK_A, 3, "detection_score", True)), ["box 3", "field 'detection_score'", "true"]),
    # -- issue 10: a sample listed twice, the second time empty: its boxes must not vanish -------
    ("duplicate-sample", '{"meta": {}, "results": {"%s": [%s], "%s": [], "%s": []}}' % (
        TOK_A, json.dumps(good_box(TOK_A)), TOK_B, TOK_A), [f"sample '{TOK_A}'", "more than once"]),
    ("duplicate-sample-indented", json.dumps(good_file(), indent=2)[:-3] + ',\n    "%s" :  [ ]\n  }\n}' % TOK_B,
     [f"sample '{TOK_B}'", "more than once"]),
    ("duplicate-sample-first-empty", '{"meta": {}, "results": {"%s": [], "%s": [], "%s": [%s]}}' % (
        TOK_A, TOK_B, TOK_A, json.dumps(good_box(TOK_A))), [f"sample '{TOK_A}'", "more than once"]),
    ("duplicate-results", json.dumps(good_file())[:-1] + ', "results": {}}', ["top-level key 'results'", "more than once"]),
    # -- issue 10: parser failures are one-line messages naming the file --------------------------
    ("deeply-nested", "[" * 100_000 + "]" * 100_000, ["nested"]),
    ("deeply-nested-with-nan", '{"meta": {"x": NaN}, "results": ' + "[" * 100_000 + "]" * 100_000 + "}", ["nested"]),
    ("invalid-utf8", b'{"meta": {"who": "\xff\xfe"}, "results": {}}', ["UTF-8"]),
]


@pytest.mark.parametrize("content,fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_detection_file_rejected_and_nothing_written(tmp_path, content, fragments):
    path = write(tmp_path, content)
    out = tmp_path / "tracks.json"

    def pipeline():
        # what `python -m nutrack.track` does: validate everything first, then work, then write
        dets = load_detections(path, sample_tokens=TOKENS)
        results = {t: Tracks(d.boxes, d.velocities, d.scores, d.classes, np.arange(len(d))) for t, d in dets.items()}
        write_tracking_results(out, results, TOKENS)

    with pytest.raises(SubmissionFormatError) as info:
        pipeline()
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith(f"detection file {path}")
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert not out.exists()
    assert os.listdir(tmp_path) == ["det.json"]  # no temporary files either


def test_at_least_ten_kinds():
    assert len(MALFORMED) >= 10


def test_good_file_loads(tmp_path):
    path = write(tmp_path, good_file())
    dets = load_detections(path, sample_tokens=TOKENS)
    assert list(dets) == TOKENS
    assert dets.meta == {"use_camera": False, "use_lidar": True}
    a = dets[TOK_A]
    assert isinstance(a, Detections) and len(a) == 5
    assert a.boxes.dtype == np.float32 and a.boxes.shape == (5, 7)
    np.testing.assert_allclose(a.boxes[:, 0], np.arange(5))
    np.testing.assert_allclose(a.boxes[0, 3:7], [4.5, 1.9, 1.6, 0.5], rtol=1e-6)  # dx=l, dy=w, yaw
    np.testing.assert_allclose(a.velocities[0], [1.0, -0.5])
    assert a.scores.dtype == np.float32 and a.classes.dtype == np.int64
    # barrier is a detection class but not a tracking class: validated, then dropped
    b = dets[TOK_B]
    assert b.classes.tolist() == [CLASS_TO_ID["car"], CLASS_TO_ID["pedestrian"]]
    kept = load_detections(path, sample_tokens=TOKENS, tracking_only=False)
    assert kept[TOK_B].classes.tolist() == [CLASS_TO_ID["car"], -1, CLASS_TO_ID["pedestrian"]]
    assert dets.num_boxes == 7
    # no expected samples: any token is fine
    assert set(load_detections(path)) == set(TOKENS)


def test_missing_sample_allowed_as_empty(tmp_path):
    d = good_file()
    del d["results"][TOK_B]
    path = write(tmp_path, d)
    with pytest.raises(SubmissionFormatError, match="allow_missing"):
        load_detections(path, sample_tokens=TOKENS)
    dets = load_detections(path, sample_tokens=TOKENS, allow_missing=True)
    assert list(dets) == TOKENS and len(dets[TOK_B]) == 0 and dets[TOK_B].boxes.shape == (0, 7)


def test_rotation_tolerance(tmp_path):
    d = good_file()
    d["results"][TOK_A][0]["rotation"] = [1.0005, 0.0, 0.0, 0.0]
    path = write(tmp_path, d)
    load_detections(path, sample_tokens=TOKENS)  # within the default 1e-3
    with pytest.raises(SubmissionFormatError, match="unit quaternion"):
        load_detections(path, sample_tokens=TOKENS, rotation_tol=1e-4)


def test_integer_numbers_and_missing_box_sample_token_accepted(tmp_path):
    d = good_file()
    box = d["results"][TOK_A][0]
    box["translation"] = [1, 2, 3]
    box["detection_score"] = 1
    del box["sample_token"]
    del box["attribute_name"]
    dets = load_detections(write(tmp_path, d), sample_tokens=TOKENS)
    np.testing.assert_allclose(dets[TOK_A].boxes[0, :3], [1, 2, 3])


def test_size_cap(tmp_path, monkeypatch):
    """The loader refuses files above a documented cap (default 8 GiB; a kwarg or
    NUTRACK_MAX_JSON_BYTES sets it) instead of filling the memory."""
    path = write(tmp_path, good_file())
    size = os.path.getsize(path)
    with pytest.raises(SubmissionFormatError, match=rf"{size} bytes.*max_bytes.*NUTRACK_MAX_JSON_BYTES"):
        load_detections(path, sample_tokens=TOKENS, max_bytes=size - 1)
    load_detections(path, sample_tokens=TOKENS, max_bytes=size)
    monkeypatch.setenv("NUTRACK_MAX_JSON_BYTES", str(size - 1))
    with pytest.raises(SubmissionFormatError, match="bytes"):
        load_detections(path, sample_tokens=TOKENS)
    with pytest.raises(SubmissionFormatError, match="bytes"):
        load_tracking_results(path, sample_tokens=TOKENS)
    monkeypatch.setenv("NUTRACK_MAX_JSON_BYTES", "lots")
    with pytest.raises(SubmissionFormatError, match="NUTRACK_MAX_JSON_BYTES"):
        load_detections(path, sample_tokens=TOKENS)


def test_limits_accept_real_values(tmp_path):
    """The limits sit far outside anything real: a 1 cm box 99 km from the origin moving at
    900 m/s still loads (they catch garbage, not unusual detections)."""
    d = good_file()
    d["results"][TOK_A][0].update(translation=[99_000.0, -99_000.0, 10.0], size=[0.01, 900.0, 0.001],
                                  velocity=[900.0, -900.0])
    dets = load_detections(write(tmp_path, d), sample_tokens=TOKENS)
    np.testing.assert_allclose(dets[TOK_A].boxes[0, :2], [99_000.0, -99_000.0])


def test_overflowing_values_warn_nothing(tmp_path):
    """A 1e300 quaternion component overflows its norm: rejected in one message, no numpy
    RuntimeWarning on stderr beside it."""
    import warnings

    d = good_file()
    d["results"][TOK_A][2]["rotation"] = [1e300, 0.0, 0.0, 0.0]
    path = write(tmp_path, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SubmissionFormatError, match=r"box 2, field 'rotation'.*norm inf"):
            load_detections(path, sample_tokens=TOKENS)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(SubmissionFormatError, match="is a folder"):
        load_detections(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # reading it would block (and /dev/zero would fill the memory)
    with pytest.raises(SubmissionFormatError, match="not a regular file"):
        load_detections(fifo)


def test_duplicate_key_inside_meta_is_not_a_sample(tmp_path):
    """A repeated key elsewhere (here in meta, written by a sloppy exporter) is not a lost
    sample: the precise re-parse finds no repeated sample and the file loads."""
    text = json.dumps(good_file())
    text = text.replace('"meta": {', '"meta": {"extra": [], "extra": [], ', 1)
    dets = load_detections(write(tmp_path, text), sample_tokens=TOKENS)
    assert len(dets[TOK_A]) == 5


def test_duplicate_sample_in_a_tracking_file(tmp_path):
    out = tmp_path / "tracks.json"
    write_tracking_results(out, {TOK_A: make_tracks(3)}, TOKENS)
    text = out.read_text()
    assert text.endswith("}}")
    dup = text[:-2] + ',"%s":[]}}' % TOK_A
    with pytest.raises(SubmissionFormatError, match=f"sample '{TOK_A}'.*more than once"):
        load_tracking_results(write(tmp_path, dup, "dup.json"), sample_tokens=TOKENS)


def test_empty_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_detections(tmp_path / "nope.json")
    path = write(tmp_path, {"meta": {}, "results": {TOK_A: [], TOK_B: []}})
    dets = load_detections(path, sample_tokens=TOKENS)
    assert all(len(v) == 0 for v in dets.values())


def test_split_checked_against_dataset(tmp_path, synthetic_dataset, synthetic_data):
    ds = synthetic_dataset
    dets = load_detections(ds.detections[ds.val_split], synthetic_data, ds.val_split)
    assert list(dets) == synthetic_data.sample_tokens(ds.val_split)
    # the train file does not hold the val split's samples
    with pytest.raises(SubmissionFormatError, match=f"not a sample of split '{ds.val_split}'"):
        load_detections(ds.detections[ds.train_split], synthetic_data, ds.val_split)
    # no split: any subset of the dataset's samples, kept as in the file
    train = load_detections(ds.detections[ds.train_split], synthetic_data)
    assert list(train) == synthetic_data.sample_tokens(ds.train_split)
    with pytest.raises(SubmissionFormatError, match="not a sample of v1.0-mini"):
        load_detections(write(tmp_path, good_file()), synthetic_data)


# --------------------------------------------------------------------------------------
# writing tracking results
# --------------------------------------------------------------------------------------


def make_tracks(n, ids=None, rng=None):
    rng = rng or np.random.default_rng(0)
    boxes = np.zeros((n, 7), np.float32)
    boxes[:, :2] = rng.uniform(-50, 50, size=(n, 2))
    boxes[:, 2] = 1.0
    boxes[:, 3:6] = [4.5, 1.9, 1.6]
    boxes[:, 6] = rng.uniform(-3, 3, n)
    return Tracks(boxes, rng.normal(size=(n, 2)), rng.uniform(0, 1, n), np.arange(n) % 7,
                  np.arange(n) if ids is None else ids)


def test_write_tracking_results_round_trip(tmp_path):
    out = tmp_path / "tracks.json"
    tr = make_tracks(10)
    write_tracking_results(out, {TOK_A: tr}, TOKENS)
    raw = json.loads(out.read_text())
    assert set(raw) == {"meta", "results"}
    assert list(raw["results"]) == TOKENS and raw["results"][TOK_B] == []
    box = raw["results"][TOK_A][0]
    assert set(box) == {"sample_token", "translation", "size", "rotation", "velocity", "tracking_id",
                        "tracking_name", "tracking_score"}
    assert box["tracking_id"] == "0" and box["tracking_name"] == "car"
    frames, meta = load_tracking_results(out, sample_tokens=TOKENS)
    back = frames[TOK_A]
    np.testing.assert_allclose(back.boxes[:, :6], tr.boxes[:, :6], atol=1e-4)
    np.testing.assert_allclose(np.cos(back.boxes[:, 6] - tr.boxes[:, 6]), 1.0, atol=1e-6)
    np.testing.assert_array_equal(back.classes, tr.classes)
    assert back.track_ids.tolist() == [str(i) for i in range(10)]
    # the devkit reads it
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.tracking.data_classes import TrackingBox

    config_factory("tracking_nips_2019")  # registers the tracking names TrackingBox checks
    eb = EvalBoxes.deserialize(raw["results"], TrackingBox)
    assert len(eb[TOK_A]) == 10


def test_write_tracking_results_errors_write_nothing(tmp_path):
    out = tmp_path / "tracks.json"
    with pytest.raises(ValueError, match="appears more than once"):
        write_tracking_results(out, {TOK_A: make_tracks(3, ids=np.array([4, 5, 4]))}, TOKENS)
    with pytest.raises(ValueError, match="not among the expected samples"):
        write_tracking_results(out, {"c" * 32: make_tracks(3)}, TOKENS)
    with pytest.raises(ValueError, match="no results for 1 expected samples"):
        write_tracking_results(out, {TOK_A: make_tracks(3)}, TOKENS, fill_missing=False)
    bad = make_tracks(3)
    bad.boxes[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_tracking_results(out, {TOK_A: bad}, TOKENS)
    with pytest.raises(ValueError, match="more than the 500"):
        write_tracking_results(out, {TOK_A: make_tracks(501)}, TOKENS)
    assert os.listdir(tmp_path) == []


def test_write_keep_top_and_atomic_replace(tmp_path):
    out = tmp_path / "tracks.json"
    out.write_text("old")
    tr = make_tracks(600)
    write_tracking_results(out, {TOK_A: tr}, TOKENS, keep_top=True)
    frames, _ = load_tracking_results(out, sample_tokens=TOKENS)
    assert len(frames[TOK_A]) == 500
    assert frames[TOK_A].scores.min() >= np.sort(tr.scores)[-500] - 1e-6
    assert sorted(os.listdir(tmp_path)) == ["tracks.json"]


def test_tracking_file_validation(tmp_path):
    out = tmp_path / "tracks.json"
    write_tracking_results(out, {TOK_A: make_tracks(3)}, TOKENS)
    raw = json.loads(out.read_text())
    dup = copy.deepcopy(raw)
    dup["results"][TOK_A][2]["tracking_id"] = dup["results"][TOK_A][0]["tracking_id"]
    p = write(tmp_path, dup, "dup.json")
    with pytest.raises(SubmissionFormatError, match=r"box 2, field 'tracking_id'.*unique"):
        load_tracking_results(p, sample_tokens=TOKENS)
    bad = copy.deepcopy(raw)
    bad["results"][TOK_A][1]["tracking_name"] = "barrier"
    with pytest.raises(SubmissionFormatError, match=r"box 1, field 'tracking_name'.*unknown class 'barrier'"):
        load_tracking_results(write(tmp_path, bad, "bad.json"), sample_tokens=TOKENS)
    missing = copy.deepcopy(raw)
    del missing["results"][TOK_B]
    with pytest.raises(SubmissionFormatError, match="missing"):
        load_tracking_results(write(tmp_path, missing, "missing.json"), sample_tokens=TOKENS)


def test_frame_array_shapes_are_checked():
    with pytest.raises(ValueError, match=r"Detections.boxes must have shape \(N, 7\), got \(7, 6\)"):
        Detections(np.zeros((7, 6)), np.zeros((7, 2)), np.zeros(7), np.zeros(7))
    with pytest.raises(ValueError, match=r"Detections.velocities must have shape \(3, 2\)"):
        Detections(np.zeros((3, 7)), np.zeros((2, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="Tracks.track_ids"):
        Tracks(np.zeros((2, 7)), np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.zeros(3))
    e = Detections([], [], [], [])
    assert e.boxes.shape == (0, 7) and e.velocities.shape == (0, 2) and len(e) == 0
    d = Detections(np.ones((3, 7)), np.ones((3, 2)), [0.1, 0.9, 0.5], [0, 1, 2])
    assert d.boxes.dtype == np.float32 and d.classes.dtype == np.int64
    assert d.select(d.scores > 0.3).classes.tolist() == [1, 2]


def test_select_by_index_arrays_keeps_the_layout():
    """select's unchecked path (index arrays) gives what the checked constructor gives."""
    rng = np.random.default_rng(0)
    det = Detections(rng.normal(size=(6, 7)), rng.normal(size=(6, 2)), rng.random(6), rng.integers(0, 7, 6))
    for index in (np.array([4, 0, 0]), rng.random(6) > 0.5, np.zeros(0, np.int64)):
        got = det.select(index)
        want = Detections(det.boxes[index], det.velocities[index], det.scores[index], det.classes[index])
        for name in ("boxes", "velocities", "scores", "classes"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous and np.array_equal(a, b)
    with pytest.raises(IndexError):
        det.select(np.ones(5, bool))
