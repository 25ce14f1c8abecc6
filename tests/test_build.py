"""The native build: in CI (where nvcc is installed) the CUDA kernels must have compiled,
even though no GPU runs them there."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nutrack.ops


def test_native_extension_is_built():
    assert nutrack.ops.has_cpu(), f"nutrack._C did not import: {nutrack.ops.why_unavailable()}"


@pytest.mark.skipif(not (os.environ.get("CI") and shutil.which("nvcc")), reason="CI with nvcc only")
def test_ci_compiles_the_cuda_kernels():
    if os.environ.get("NUTRACK_CUDA") == "0":
        pytest.skip("NUTRACK_CUDA=0")
    assert nutrack.ops.has_cuda(), "nvcc is installed but nutrack._C was built without CUDA"


def _setup_module(monkeypatch) -> dict:
    """setup.py's globals, without running setup()."""
    import runpy

    import setuptools

    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    root = Path(__file__).resolve().parent.parent
    return runpy.run_path(str(root / "setup.py"), run_name="nutrack_setup")


def _write_cache(folder: Path, **entries: str) -> None:
    lines = [f"{key}:FILEPATH={value}" for key, value in entries.items()]
    (folder / "CMakeCache.txt").write_text("# CMake cache\n" + "\n".join(lines) + "\n")
    (folder / "CMakeFiles").mkdir()


def test_second_install_drops_a_cache_naming_a_deleted_build_env(tmp_path, monkeypatch):
    """pip's isolated build env (its cmake and ninja) is gone by the second `pip install .`."""
    drop = _setup_module(monkeypatch)["drop_stale_cmake_cache"]
    gone = tmp_path / "pip-build-env-x" / "overlay" / "bin"
    _write_cache(tmp_path, CMAKE_COMMAND=str(gone / "cmake"), CMAKE_MAKE_PROGRAM=str(gone / "ninja"))
    assert drop(tmp_path)
    assert not (tmp_path / "CMakeCache.txt").exists() and not (tmp_path / "CMakeFiles").exists()
    assert not drop(tmp_path)  # nothing left to drop


def test_a_valid_cmake_cache_is_kept(tmp_path, monkeypatch):
    drop = _setup_module(monkeypatch)["drop_stale_cmake_cache"]
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("no cmake on PATH")
    _write_cache(tmp_path, CMAKE_COMMAND=cmake, CMAKE_MAKE_PROGRAM=sys.executable)
    assert not drop(tmp_path)
    assert (tmp_path / "CMakeCache.txt").exists()


def test_require_native_turns_a_missing_extension_into_an_error():
    """Under NUTRACK_REQUIRE_NATIVE=1 (CI) a run without nutrack._C fails instead of skipping
    the cpu-vs-numba comparisons and passing."""
    root = Path(__file__).resolve().parent.parent
    script = ("import sys; sys.modules['nutrack._C'] = None; import pytest; "
              "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--co', 'tests/test_build.py']))")
    env = dict(os.environ, NUTRACK_REQUIRE_NATIVE="1")
    run = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode != 0
    assert "NUTRACK_REQUIRE_NATIVE" in run.stdout + run.stderr
