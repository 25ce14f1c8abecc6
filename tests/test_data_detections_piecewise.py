"""The sample-at-a-time reader of large detection files (issue 12, item 4): the same
arrays, meta and one-line errors as the whole-file parse, on adversarial layouts; its
structure scan (nutrack.data.jsonfile.scan_events / object_members) held to json.loads."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

import nutrack.data.detections as D
import nutrack.data.jsonfile as J
from nutrack.data import SubmissionFormatError, load_detections, load_tracking_results, write_tracking_results

from test_data_detections import MALFORMED, TOK_A, TOK_B, TOKENS, good_box, good_file, make_tracks, write


@pytest.fixture
def whole(monkeypatch):
    """Every file read whole (the reference)."""
    monkeypatch.setattr(D, "PIECEWISE_MIN_BYTES", float("inf"))


def load_both(monkeypatch, loader, path, **kwargs):
    """(result or message) of ``loader`` read whole, then piecewise."""
    out = []
    for threshold in (float("inf"), 0):
        monkeypatch.setattr(D, "PIECEWISE_MIN_BYTES", threshold)
        try:
            out.append(loader(path, **kwargs))
        except SubmissionFormatError as e:
            out.append(str(e))
    return out


def only_piecewise(monkeypatch):
    """Fail if the whole-file path is taken: the file must be read a sample at a time."""
    def refuse(*args, **kwargs):
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(D, "PIECEWISE_MIN_BYTES", 0)
    monkeypatch.setattr(D, "_read_submission", refuse)


def assert_same_detections(a, b):
    assert list(a) == list(b)
    assert a.meta == b.meta
    for token in a:
        for name in ("boxes", "velocities", "scores", "classes"):
            x, y = getattr(a[token], name), getattr(b[token], name)
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes(), (token, name)  # bit for bit


# more malformed files for the piecewise reader: scalars where the skeleton holds a value
MALFORMED_PIECES = [
    ("sample-null", '{"meta": {}, "results": {"%s": null, "%s": []}}' % (TOK_A, TOK_B), ["must be a list of boxes"]),
    ("sample-string", '{"meta": {}, "results": {"%s": [], "%s": "[]"}}' % (TOK_A, TOK_B), ["must be a list of boxes"]),
    ("meta-number", '{"meta": 5e3, "results": {"%s": [], "%s": []}}' % (TOK_A, TOK_B), ["'meta' must be"]),
    ("bad-number", '{"meta": {}, "results": {"%s": [], "%s": 01}}' % (TOK_A, TOK_B), ["not valid JSON"]),
]


@pytest.mark.parametrize("content,fragments", [m[1:] for m in MALFORMED + MALFORMED_PIECES],
                         ids=[m[0] for m in MALFORMED + MALFORMED_PIECES])
def test_malformed_files_give_the_whole_file_message(tmp_path, monkeypatch, content, fragments):
    whole_msg, piece_msg = load_both(monkeypatch, load_detections, write(tmp_path, content), sample_tokens=TOKENS)
    assert isinstance(whole_msg, str)
    assert all(frag in whole_msg for frag in fragments), whole_msg
    assert piece_msg == whole_msg


def test_malformed_tracking_files_give_the_whole_file_message(tmp_path, monkeypatch):
    out = tmp_path / "tracks.json"
    write_tracking_results(out, {TOK_A: make_tracks(3)}, TOKENS)
    text = out.read_text()
    bad = [text[:-2] + ',"%s":[]}}' % TOK_A,  # a sample twice
           text.replace('"tracking_id":"1"', '"tracking_id":"0"'),  # a repeated id
           text.replace('"tracking_score":', '"tracking_score":7', 1)]
    assert len(set(bad)) == 3
    for i, content in enumerate(bad):
        whole_msg, piece_msg = load_both(monkeypatch, load_tracking_results, write(tmp_path, content, f"{i}.json"),
                                         sample_tokens=TOKENS)
        assert isinstance(whole_msg, str) and piece_msg == whole_msg, i


def test_a_box_error_waits_for_the_rest_of_the_file_to_be_json(tmp_path, monkeypatch):
    """The whole-file path reports a file that is not JSON before a bad box; so does the
    piecewise reader, though it meets the box first. A NaN later on is JSON to Python."""
    d = good_file()
    d["results"][TOK_A][1]["detection_score"] = 3.0
    text = json.dumps(d)
    # a colon missing in the last sample, deeper than the scan looks: only its parse sees it
    cut = text.rindex('"velocity": [')
    broken = text[:cut] + text[cut:].replace('"velocity": [', '"velocity" [', 1)
    whole_msg, piece_msg = load_both(monkeypatch, load_detections, write(tmp_path, broken), sample_tokens=TOKENS)
    assert "not valid JSON" in whole_msg and piece_msg == whole_msg
    d["results"][TOK_B][0]["velocity"] = [float("nan"), 0.0]
    whole_msg, piece_msg = load_both(monkeypatch, load_detections, write(tmp_path, d, "nan.json"), sample_tokens=TOKENS)
    assert "box 1, field 'detection_score'" in whole_msg and piece_msg == whole_msg


def adversarial_files():
    """(id, text) of valid files laid out as exporters might, or as an adversary would."""
    tricky = ['br]ack}e{ts[', 'quote \\" inside', 'back\\\\slash\\\\', 'tail backslash \\\\',
              'unicode \\u00e9\\u2603 \\ud83d\\ude00', 'a\\nb\\tc', '\\"', "':,"]
    meta_text = {"tricky": [json.loads('"%s"' % t) for t in tricky], "lists": [[], {}, [{}], {"a": [{"b": []}]}],
                 "use_lidar": True, "numbers": [1, -0.0, 1e-7, 2 ** 62]}
    results = good_file()["results"]
    files = []

    def add(name, text):
        files.append((name, text))

    add("compact", json.dumps({"meta": meta_text, "results": results}, separators=(",", ":")))
    add("indented", json.dumps({"meta": meta_text, "results": results}, indent=2))
    add("results-first", json.dumps({"results": results, "meta": meta_text}))
    add("results-between", json.dumps({"a": "]}", "n": None, "results": results, "meta": meta_text,
                                       "z": [1, {"x": "["}], "f": -1.5e-3}))
    add("results-last-nested-meta", json.dumps({"meta": {"x": {"y": {"z": [{"w": ["]]}}"]}]}}}, "results": results}))
    add("empty-samples", json.dumps({"meta": {}, "results": {TOK_A: [], TOK_B: []}}))
    add("empty-everything", json.dumps({"meta": {}, "results": {}}))
    # whitespace JSON allows, everywhere it may stand (no brackets inside strings here)
    ws = " \t\r\n "
    spaced = json.dumps({"meta": {"a": [[], {}]}, "results": results}, separators=(ws + "," + ws, ws + ":" + ws))
    add("whitespace-everywhere", ws + spaced.replace("{", "{" + ws).replace("}", ws + "}").replace("[", "[" + ws)
        .replace("]", ws + "]") + ws)
    # the sample tokens spelled with escapes, and strings holding quotes, brackets and backslashes
    escaped = json.dumps({"meta": meta_text, "results": results}).replace(
        '"%s": [' % TOK_A, '"\\u0061%s": [' % TOK_A[1:]).replace(
        '"vehicle.moving"', '"ve\\\\hi\\"cle ]} [{ \\\\"')
    add("escaped-tokens-and-strings", escaped)
    add("bom", "\ufeff" + json.dumps({"meta": {}, "results": results}))
    add("nan-in-meta", json.dumps({"meta": {"x": float("nan")}, "results": results}))
    return files


ADVERSARIAL = adversarial_files()


@pytest.mark.parametrize("text", [t for _, t in ADVERSARIAL], ids=[n for n, _ in ADVERSARIAL])
def test_adversarial_layouts_read_piecewise_as_whole(tmp_path, monkeypatch, text, whole):
    path = write(tmp_path, text)
    expected = load_detections(path, sample_tokens=TOKENS, allow_missing=True, tracking_only=False)
    only_piecewise(monkeypatch)
    got = load_detections(path, sample_tokens=TOKENS, allow_missing=True, tracking_only=False)
    assert_same_detections(got, expected)
    assert json.dumps(got.meta, sort_keys=True) == json.dumps(expected.meta, sort_keys=True)  # NaN != NaN


def test_tracking_results_read_piecewise_as_whole(tmp_path, monkeypatch, whole):
    path = tmp_path / "tracks.json"
    write_tracking_results(path, {TOK_A: make_tracks(4), TOK_B: make_tracks(2)}, TOKENS)
    frames, meta = load_tracking_results(path, sample_tokens=TOKENS)
    only_piecewise(monkeypatch)
    frames2, meta2 = load_tracking_results(path, sample_tokens=TOKENS)
    assert meta2 == meta and list(frames2) == list(frames)
    for token in frames:
        for name in ("boxes", "velocities", "scores", "classes", "track_ids"):
            assert getattr(frames2[token], name).tolist() == getattr(frames[token], name).tolist()


def test_many_samples_small_chunks_without_orjson(tmp_path, monkeypatch, whole):
    """Events past the arrays' first size, chunk boundaries inside strings and escapes (7-byte
    chunks), and the standard library's parser alone (orjson missing)."""
    # tokens ending in a backslash, a quote and brackets (written escaped), at every offset
    # modulo the chunk: an escape lost between chunks ends a token early and shows
    tokens = ["." * (i % 11) + f"{i:x}" + '\\"]}' for i in range(1500)]
    results = {t: [good_box(t, x=float(i % 7))] if i % 3 else [] for i, t in enumerate(tokens)}
    path = write(tmp_path, {"meta": {"s": '\\"]}'}, "results": results})
    expected = load_detections(path, sample_tokens=tokens)
    only_piecewise(monkeypatch)
    monkeypatch.setattr(J, "_CHUNK_BYTES", 7)
    monkeypatch.setattr(J, "_orjson", None)
    assert_same_detections(load_detections(path, sample_tokens=tokens), expected)


def skeleton(text: bytes):
    """The top-level members and those of 'results', parsed piece by piece from the scan."""
    f = io.BytesIO(text)
    events = J.scan_events(f, len(text))
    top = J.document_members(events)
    out = {}
    for ks, ke, vs, ve, first in top:
        key = json.loads(text[ks:ke])
        if key == "results":
            samples = J.object_members(events, first)[0]
            out[key] = {json.loads(text[a:b]): json.loads(text[c:d]) for a, b, c, d, _ in samples}
        else:
            out[key] = json.loads(text[vs:ve])
    return out


@pytest.mark.parametrize("text", [t for _, t in ADVERSARIAL if not t.startswith("\ufeff")],
                         ids=[n for n, t in ADVERSARIAL if not t.startswith("\ufeff")])
def test_scan_pieces_equal_json_loads(text):
    doc = json.loads(text)
    assert json.dumps(skeleton(text.encode()), sort_keys=True) == json.dumps(doc, sort_keys=True)


NOT_PIECEABLE = [
    ("trailing-comma", '{"meta": {}, "results": {"a": [],}}'),
    ("missing-comma", '{"meta": {} "results": {}}'),
    ("missing-colon", '{"meta" {}, "results": {}}'),
    ("two-scalars", '{"meta": 1 2, "results": {}}'),
    ("key-not-string", '{"meta": {}, "results": {a: []}}'),
    ("junk-after", '{"meta": {}, "results": {}} x'),
    ("two-objects", '{"meta": {}, "results": {}}{}'),
    ("unbalanced", '{"meta": {}, "results": {"a": [}}'),
    ("extra-closer", '{"meta": {}, "results": {}}}'),
    ("mismatched", '{"meta": {], "results": {}}'),
    ("unterminated-string", '{"meta": {}, "results": {"a'),
    ("top-list", '[{"meta": {}}]'),
    ("empty", ""),
    ("too-deep", '{"meta": ' + "[" * 100 + "]" * 100 + ', "results": {}}'),
]


@pytest.mark.parametrize("text", [t for _, t in NOT_PIECEABLE], ids=[n for n, _ in NOT_PIECEABLE])
def test_scan_refuses_what_is_not_an_object_of_members(text):
    with pytest.raises(J.NotPieceable):
        skeleton(text.encode())


def test_large_file_is_never_read_whole(tmp_path, monkeypatch):
    """At the default threshold a file of 8 MiB or more goes piecewise: the whole-file reader
    (which would hold ~5.7x the file in Python objects) is not called."""
    tokens = [f"{i:032x}" for i in range(300)]
    box = good_box("x")
    results = {t: [dict(box, sample_token=t, translation=[float(i), 2.0, math.pi])] * 100 for i, t in enumerate(tokens)}
    path = write(tmp_path, {"meta": {}, "results": results})
    import os

    assert os.path.getsize(path) >= D.PIECEWISE_MIN_BYTES
    monkeypatch.setattr(D, "_read_submission", lambda *a, **k: pytest.fail("read whole"))
    monkeypatch.setattr(J, "read_json_bytes", lambda *a, **k: pytest.fail("read whole"))
    dets = load_detections(path, sample_tokens=tokens)
    assert dets.num_boxes == 300 * 100
    np.testing.assert_array_equal(dets[tokens[-1]].boxes[:, 0], np.float32(299.0))


def test_a_sample_repeated_after_a_value_that_is_not_a_list(tmp_path, monkeypatch):
    """The first value lost to the repeat is not a list, which the whole-file path's cheap
    count (may_have_repeated_keys) does not see; the piecewise reader lists every key."""
    text = '{"meta": {}, "results": {"%s": 5, "%s": [], "%s": []}}' % (TOK_A, TOK_B, TOK_A)
    only_piecewise(monkeypatch)
    with pytest.raises(SubmissionFormatError, match=f"sample '{TOK_A}'.*more than once"):
        load_detections(write(tmp_path, text), sample_tokens=TOKENS)
