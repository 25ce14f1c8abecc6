"""Shared fixtures.

``synthetic_dataset``: a tiny synthetic nuScenes dataset (v1.0-mini layout, one
``mini_train`` and one ``mini_val`` scene of 6 keyframes, LIDAR_TOP sweeps, simulated
detection files for both splits), generated once per test session. It is a
:class:`nutrack.data.synth.DefaultDataset`: ``dataroot``, ``version``, ``train_split``,
``val_split`` and ``detections`` (``{split: path}``). Treat it as read-only.

``synthetic_data``: the same dataset opened as a :class:`nutrack.data.NuScenesData`.

NUTRACK_REQUIRE_NATIVE=1 makes a missing native extension fail the run (pytest_sessionstart).
The emulated CUDA backend has its own session fixture, in test_cuda_emu.py.
"""

from __future__ import annotations

import os

import pytest


def pytest_sessionstart(session):
    """NUTRACK_REQUIRE_NATIVE=1 (CI sets it): a missing or broken nutrack._C is an error, not
    a reason for the cpu-vs-numba comparisons to skip while a partial run passes."""
    if os.environ.get("NUTRACK_REQUIRE_NATIVE", "0") not in ("", "0"):
        import nutrack.ops

        if not nutrack.ops.has_cpu():
            raise pytest.UsageError("NUTRACK_REQUIRE_NATIVE is set but nutrack._C did not import: "
                                    f"{nutrack.ops.why_unavailable()}")


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    from nutrack.data.synth import SynthConfig, build

    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    return build(str(root), SynthConfig.tiny(), progress=False)


@pytest.fixture(scope="session")
def synthetic_data(synthetic_dataset):
    from nutrack.data import NuScenesData

    return NuScenesData(synthetic_dataset.dataroot, synthetic_dataset.version)
