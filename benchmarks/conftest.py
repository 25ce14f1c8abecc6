"""Benchmarks run only with `pytest benchmarks --benchmark` (pytest's documented --runslow
recipe): a plain `pytest` collects and skips them, so the test suite stays fast.

Conventions for every suite: set `benchmark.group` to the case (op and size) and
`benchmark.extra_info["impl"]` to the implementation (numba, cpu, cuda, numpy, devkit, ...).
At the end a summary prints, per group, each implementation's median and its speed relative
to numba (how many times faster than numba; >1 is faster), all from this one run.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--benchmark", action="store_true", default=False,
                     help="run the benchmarks in benchmarks/")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--benchmark"):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `pytest benchmarks --benchmark`")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def cuda_ready() -> bool:
    try:
        import torch
    except ImportError:
        return False
    import nutrack.ops

    return torch.cuda.is_available() and nutrack.ops.has_cuda()


requires_cuda = pytest.mark.skipif(not cuda_ready(), reason="needs a CUDA GPU and the CUDA backend")


def synchronize() -> None:
    import torch

    torch.cuda.synchronize()


def _format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:9.2f} ms"
    return f"{seconds:9.2f} s "


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benchmarks = getattr(session, "benchmarks", None) if session else None
    if not benchmarks:
        return
    groups: dict = {}
    for bench in benchmarks:
        impl = (getattr(bench, "extra_info", None) or {}).get("impl", bench.name)
        groups.setdefault(bench.group or "", []).append((impl, bench.stats.median))
    write = terminalreporter.write_line
    write("")
    write("nutrack benchmark summary (median; x numba = numba median / this median)")
    for group in sorted(groups):
        rows = groups[group]
        numba = dict(rows).get("numba")
        write(f"  {group}")
        for impl, median in sorted(rows, key=lambda r: r[1]):
            ratio = f"{numba / median:8.2f}x numba" if numba else ""
            write(f"    {impl:<14}{_format_time(median)}  {ratio}")
        _write_load_ratios(write, dict(rows))


def _write_load_ratios(write, medians) -> None:
    """For the load benchmark (test_bench_load.py): each implementation's loaded / idle median,
    and, where the group has a ``memory floor``, each idle median as a multiple of it."""
    floor = medians.get("memory floor idle")
    for impl, idle in sorted(medians.items()):
        if not impl.endswith(" idle"):
            continue
        name = impl[: -len(" idle")]
        loaded = medians.get(name + " loaded")
        parts = [f"loaded/idle {loaded / idle:5.2f}" if loaded else ""]
        if floor and name != "memory floor":
            parts.append(f"{idle / floor:6.1f}x the memory floor")
        write(f"    {name:<14}" + "   ".join(p for p in parts if p))
