"""Shared fixtures.

``synthetic_dataset``: a tiny synthetic nuScenes dataset (v1.0-mini layout, one
``mini_train`` and one ``mini_val`` scene of 6 keyframes, LIDAR_TOP sweeps, simulated
detection files for both splits), generated once per test session. It is a
:class:`nutrack.data.synth.DefaultDataset`: ``dataroot``, ``version``, ``train_split``,
``val_split`` and ``detections`` (``{split: path}``). Treat it as read-only.

``synthetic_data``: the same dataset opened as a :class:`nutrack.data.NuScenesData`.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    from nutrack.data.synth import SynthConfig, build

    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    return build(str(root), SynthConfig.tiny(), progress=False)


@pytest.fixture(scope="session")
def synthetic_data(synthetic_dataset):
    from nutrack.data import NuScenesData

    return NuScenesData(synthetic_dataset.dataroot, synthetic_dataset.version)
