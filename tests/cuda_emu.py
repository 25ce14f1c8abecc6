"""The emulated CUDA backend of the tests: csrc/*_cuda.cu, unmodified, compiled with g++ against
HIP-CPU (a header-only HIP runtime that runs GPU kernels on the CPU: __shared__ memory,
__syncthreads through fibers, atomics, streams) into a module `_C_emu` that exposes the same
CUDA launchers as nutrack._C, over host memory. See csrc/gpu_runtime.h for what changes between
the two builds (the launch syntax, a 32-lane ballot) and csrc/device_algorithms.h for the host
stand-in of the two CUB calls.

HIP-CPU is a test tool, like nvcc: it is not part of nutrack and is never copied into it. It is
found at NUTRACK_HIP_CPU, else at ../shared/third_party/hip-cpu beside the repository. It needs
g++ >= 9 (C++17) and TBB (`apt-get install libtbb-dev`).

The module is built from the checkout under test and cached by a hash of everything that goes
into it (csrc/, HIP-CPU's headers, the flags, the compiler, the Python ABI) under
NUTRACK_EMU_CACHE (default ~/.cache/nutrack/cuda-emu), one object file per source: editing a
kernel and rerunning pytest rebuilds that file's object and tests the edited kernel. Nothing
there is ever reused for other sources, so the folder can be deleted at any time. The emulated copy of the shared geometry lives in its own namespace
(-Dnutrack=nutrack_emu) as well as its own module, so it can never stand in for nutrack._C's.

NUTRACK_EMU_SANITIZE=1 builds it with AddressSanitizer + UndefinedBehaviorSanitizer instead;
such a module only loads into a Python started with the sanitizer runtimes preloaded, which
`python -m tests.cuda_emu --sanitize [pytest args]` does (it runs the cuda_emu tests).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
CSRC = REPO / "csrc"
MODULE = "_C_emu"
# -O1: the build is most of the cost (each kernel file is a few seconds at -O1, twice that at
# -O2), and the emulated kernels run fast enough either way.
FLAGS = ["-std=c++17", "-O1", "-fPIC", "-ffp-contract=off", "-fopenmp-simd", "-pthread",
         "-DNUTRACK_HIP_CPU", "-DNUTRACK_WITH_CUDA", "-DNUTRACK_EMULATED",
         f"-DNUTRACK_MODULE_NAME={MODULE}", "-Dnutrack=nutrack_emu"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=undefined", "-g"]
LIBS = ["-ltbb", "-ldl"]


def hip_cpu_root() -> Path:
    return Path(os.environ.get("NUTRACK_HIP_CPU", REPO.parent / "shared" / "third_party" / "hip-cpu"))


def sanitize_requested() -> bool:
    return os.environ.get("NUTRACK_EMU_SANITIZE", "0") not in ("", "0")


def _compiler() -> str:
    return os.environ.get("CXX", "g++")


def missing() -> str | None:
    """Why the emulated backend cannot be built here (one line), or None when it can."""
    if shutil.which(_compiler()) is None:
        return f"no C++ compiler ({_compiler()}) on PATH"
    if not (hip_cpu_root() / "include" / "hip" / "hip_api.h").is_file():
        return f"HIP-CPU not found at {hip_cpu_root()} (set NUTRACK_HIP_CPU)"
    try:
        import pybind11  # noqa: F401
    except ImportError:
        return "pybind11 is not installed (pip install pybind11)"
    probe = subprocess.run([_compiler(), "-std=c++17", "-x", "c++", "-E", "-"],
                           input="#include <tbb/tbb.h>\n", capture_output=True, text=True)
    if probe.returncode != 0:
        return "TBB headers not found (apt-get install libtbb-dev)"
    return None


def _sources() -> list[Path]:
    return sorted(CSRC.glob("*_cuda.cu")) + [CSRC / "bindings.cpp"]


def _flags(sanitize: bool) -> list[str]:
    import pybind11

    includes = [f"-I{hip_cpu_root() / 'include'}", f"-I{CSRC}", f"-I{CSRC / 'include'}",
                f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]
    return FLAGS + (SANITIZE_FLAGS if sanitize else []) + includes


def _common_fingerprint(sanitize: bool) -> "hashlib._Hash":
    """Everything but the sources themselves: headers, HIP-CPU, flags, compiler, Python."""
    digest = hashlib.sha256()
    inputs = sorted(p for p in CSRC.rglob("*") if p.is_file() and p.suffix not in (".cu", ".cpp"))
    inputs += sorted(p for p in (hip_cpu_root() / "include").rglob("*") if p.is_file())
    inputs += sorted(p for p in (hip_cpu_root() / "src").rglob("*") if p.is_file())
    for path in inputs:
        digest.update(str(path.relative_to(path.anchor)).encode())
        digest.update(path.read_bytes())
    version = subprocess.run([_compiler(), "--version"], capture_output=True, text=True).stdout
    digest.update(" ".join(_flags(sanitize) + LIBS + [version, sys.version]).encode())
    return digest


def _object_keys(sanitize: bool) -> dict:
    """source -> the key of its object file: the common fingerprint and the source's bytes. An
    edited kernel file rebuilds its own object only (and the link)."""
    common = _common_fingerprint(sanitize)
    keys = {}
    for source in _sources():
        digest = common.copy()
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
        keys[source] = digest.hexdigest()[:24] + ("-asan" if sanitize else "")
    return keys


def cache_root() -> Path:
    return Path(os.environ.get("NUTRACK_EMU_CACHE", Path.home() / ".cache" / "nutrack" / "cuda-emu"))


def _compile_objects(keys: dict, sanitize: bool) -> list[Path]:
    """The object of every source, compiling (in parallel, one g++ each) those not cached."""
    objects_dir = cache_root() / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    flags = _flags(sanitize)
    jobs, objects = [], []
    for source, key in keys.items():
        obj = objects_dir / f"{source.name}.{key}.o"
        objects.append(obj)
        if obj.is_file():
            continue
        staging = objects_dir / f".{obj.name}.{os.getpid()}"
        language = ["-x", "c++"] if source.suffix == ".cu" else []
        cmd = [_compiler(), *flags, *language, "-c", str(source), "-o", str(staging)]
        jobs.append((source, staging, obj, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    errors = []
    for source, staging, obj, job in jobs:
        output = job.communicate()[0]
        if job.returncode != 0:
            errors.append(f"{source.name}:\n{output[-4000:]}")
            staging.unlink(missing_ok=True)
        else:
            os.replace(staging, obj)  # atomic: a concurrent build of the same source may win
    if errors:
        raise RuntimeError("building the emulated CUDA module failed:\n" + "\n".join(errors))
    return objects


def build(sanitize: bool | None = None) -> Path:
    """The path of the emulated module for the current sources, built if not cached."""
    sanitize = sanitize_requested() if sanitize is None else sanitize
    keys = _object_keys(sanitize)
    module_key = hashlib.sha256("".join(keys.values()).encode()).hexdigest()[:24]
    final = cache_root() / (module_key + ("-asan" if sanitize else ""))
    target = final / (MODULE + sysconfig.get_config_var("EXT_SUFFIX"))
    if target.is_file():
        return target
    objects = _compile_objects(keys, sanitize)
    staging = Path(tempfile.mkdtemp(prefix=".link-", dir=cache_root()))
    try:
        link = [_compiler(), "-shared", *(SANITIZE_FLAGS if sanitize else []), "-pthread",
                *map(str, objects), "-o", str(staging / target.name), *LIBS]
        subprocess.run(link, check=True, capture_output=True, text=True)
        try:
            staging.rename(final)  # atomic: a concurrent build of the same sources may win
        except OSError:
            if not target.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sanitizer_preload() -> str:
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        found = subprocess.run([_compiler(), f"-print-file-name={name}"], capture_output=True,
                               text=True).stdout.strip()
        libs.append(found)
    return ":".join(libs)


def main(argv: list[str]) -> int:
    """python -m tests.cuda_emu [--sanitize] [pytest args]: runs the cuda_emu tests, under
    ASan + UBSan with --sanitize."""
    env = dict(os.environ)
    if argv[:1] == ["--sanitize"]:
        argv = argv[1:]
        env.update(NUTRACK_EMU_SANITIZE="1", LD_PRELOAD=_sanitizer_preload(),
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    reason = missing()
    if reason:
        print(f"cuda_emu: cannot build the emulated backend: {reason}", file=sys.stderr)
        return 1
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda_emu", *argv]
    return subprocess.run(cmd, cwd=REPO, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
