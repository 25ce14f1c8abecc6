"""The native build: in CI (where nvcc is installed) the CUDA kernels must have compiled,
even though no GPU runs them there."""
import os
import shutil

import pytest

import nutrack.ops


def test_native_extension_is_built():
    assert nutrack.ops.has_cpu(), f"nutrack._C did not import: {nutrack.ops.why_unavailable()}"


@pytest.mark.skipif(not (os.environ.get("CI") and shutil.which("nvcc")), reason="CI with nvcc only")
def test_ci_compiles_the_cuda_kernels():
    if os.environ.get("NUTRACK_CUDA") == "0":
        pytest.skip("NUTRACK_CUDA=0")
    assert nutrack.ops.has_cuda(), "nvcc is installed but nutrack._C was built without CUDA"
