"""The devkit's merge of per-scene event tables, in linear time.

For every class and every recall threshold, the devkit's tracking evaluation
(``TrackingEvaluation.accumulate_threshold``) builds one motmetrics accumulator per scene and
merges them with ``MOTAccumulatorCustom.merge_event_dataframes``, which grows the merged table
with ``pd.concat((r, copy))`` once per scene and reads ``r``'s frame index each time: every
scene copies all the scenes before it, so the merge is quadratic in the number of scenes. It
is called 41 times per class (the threshold search and 40 thresholds). Measured (CPU, 150
scenes of ~4,700 events): 8.9 s per call against 3.1 s for :func:`merge_event_dataframes`
below, and the gap grows with the split (benchmarks/RESULTS.md, "Scale run").

:func:`merge_event_dataframes` is the devkit's function with the loop's one quadratic step
taken out: the per-scene copies are concatenated once at the end, and the next frame offset
comes from the running maximum and count of the frames merged so far (the same numbers as
``r.index.get_level_values(0).max()`` and ``.unique().shape[0]``, since the offset frames of
each scene lie above all earlier ones). The result is the same DataFrame, index and
mappings (tests/test_eval_merge.py checks equality against the devkit's). Nothing of the
metric is changed: :func:`linear_merge` swaps it in for the duration of an evaluation only.
"""
from __future__ import annotations

import contextlib
from itertools import count
from typing import Iterator

import numpy as np

__all__ = ["merge_event_dataframes", "linear_merge"]


def merge_event_dataframes(dfs, update_frame_indices=True, update_oids=True, update_hids=True,
                           return_mappings=False):
    """``MOTAccumulatorCustom.merge_event_dataframes`` (nuscenes-devkit 1.2), the same result,
    one concatenation."""
    import pandas as pd
    from nuscenes.eval.tracking.mot import MOTAccumulatorCustom

    mapping_infos = []
    new_oid, new_hid = count(), count()
    parts = [MOTAccumulatorCustom.new_event_dataframe()]
    frame_max, n_frames = np.nan, 0  # over the frames merged so far
    for df in dfs:
        if isinstance(df, MOTAccumulatorCustom):
            df = df.events
        copy = df.copy()
        infos = {}
        if update_frame_indices:
            next_frame_id = max(frame_max + 1, n_frames)
            if np.isnan(next_frame_id):
                next_frame_id = 0
            if not copy.index.empty:
                copy.index = copy.index.map(lambda x, off=next_frame_id: (x[0] + off, x[1]))
            infos["frame_offset"] = next_frame_id
        if update_oids:
            oid_map = dict([oid, str(next(new_oid))] for oid in copy["OId"].dropna().unique())
            copy["OId"] = copy["OId"].map(lambda x, m=oid_map: m[x], na_action="ignore")
            infos["oid_map"] = oid_map
        if update_hids:
            hid_map = dict([hid, str(next(new_hid))] for hid in copy["HId"].dropna().unique())
            copy["HId"] = copy["HId"].map(lambda x, m=hid_map: m[x], na_action="ignore")
            infos["hid_map"] = hid_map
        parts.append(copy)
        mapping_infos.append(infos)
        if not copy.index.empty:
            frames = copy.index.get_level_values(0)
            top = frames.max()
            frame_max = top if np.isnan(frame_max) else max(frame_max, top)
            n_frames += frames.unique().shape[0]
    r = pd.concat(parts)
    return (r, mapping_infos) if return_mappings else r


@contextlib.contextmanager
def linear_merge() -> Iterator[None]:
    """Within the block, the devkit's tracking evaluation merges with
    :func:`merge_event_dataframes` (forked workers inherit it); the devkit's own function is
    put back afterwards."""
    from nuscenes.eval.tracking.mot import MOTAccumulatorCustom

    before = MOTAccumulatorCustom.__dict__["merge_event_dataframes"]
    MOTAccumulatorCustom.merge_event_dataframes = staticmethod(merge_event_dataframes)
    try:
        yield
    finally:
        MOTAccumulatorCustom.merge_event_dataframes = before
