"""Builds nutrack._C with CMake (the pybind11 cmake_example pattern).

Environment:
  NUTRACK_CUDA=0|1       force the CUDA backend off / on (default: on when CMake finds nvcc)
  NUTRACK_CUDA_ARCH      CMAKE_CUDA_ARCHITECTURES (default "80-real;90-real;90-virtual")
  CMAKE_ARGS             extra arguments for CMake
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: str = "") -> None:
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


# The tools a configured build folder runs; pip's isolated build environment (where cmake and
# ninja come from) is deleted after each install, so the next install in the same source folder
# finds build/temp*/CMakeCache.txt naming programs that no longer exist.
_CACHED_PROGRAMS = ("CMAKE_COMMAND", "CMAKE_MAKE_PROGRAM", "CMAKE_CXX_COMPILER",
                    "CMAKE_CUDA_COMPILER", "Python_EXECUTABLE")


def drop_stale_cmake_cache(build_temp: Path) -> bool:
    """Removes the CMake cache of `build_temp` when a program it names is gone (or another
    cmake than this one configured it); returns whether it did. CMake then configures afresh."""
    cache = build_temp / "CMakeCache.txt"
    if not cache.is_file():
        return False
    entries = dict(re.findall(r"^(\w+):[A-Z]+=(.*)$", cache.read_text(errors="replace"), re.M))
    stale = [entries[k] for k in _CACHED_PROGRAMS if entries.get(k) and not Path(entries[k]).exists()]
    cmake = shutil.which("cmake")
    if cmake and entries.get("CMAKE_COMMAND") and Path(entries["CMAKE_COMMAND"]).exists():
        if Path(entries["CMAKE_COMMAND"]).resolve() != Path(cmake).resolve():
            stale.append(entries["CMAKE_COMMAND"])
    if not stale:
        return False
    print(f"nutrack: dropping the stale CMake cache in {build_temp} (gone: {', '.join(stale)})")
    cache.unlink()
    shutil.rmtree(build_temp / "CMakeFiles", ignore_errors=True)
    return True


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        extdir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        cfg = "Debug" if os.environ.get("DEBUG", "0") == "1" else "Release"
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
        ]
        if "NUTRACK_CUDA" in os.environ:
            cmake_args.append(f"-DNUTRACK_CUDA={os.environ['NUTRACK_CUDA']}")
        if "NUTRACK_CUDA_ARCH" in os.environ:
            cmake_args.append(f"-DNUTRACK_CUDA_ARCH={os.environ['NUTRACK_CUDA_ARCH']}")
        if "CMAKE_ARGS" in os.environ:
            cmake_args += [a for a in os.environ["CMAKE_ARGS"].split(" ") if a]
        try:
            import pybind11

            cmake_args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
        except ImportError:
            pass
        build_args = ["--config", cfg]
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
            build_args += [f"-j{os.cpu_count() or 2}"]
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        drop_stale_cmake_cache(build_temp)
        subprocess.run(["cmake", ext.sourcedir, "-G", "Ninja", *cmake_args], cwd=build_temp, check=True)
        subprocess.run(["cmake", "--build", ".", *build_args], cwd=build_temp, check=True)


setup(ext_modules=[CMakeExtension("nutrack._C")], cmdclass={"build_ext": CMakeBuild})
