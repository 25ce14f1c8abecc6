"""Benchmarks run only with `pytest benchmarks --benchmark` (pytest's documented --runslow
recipe): a plain `pytest` collects and skips them, so the test suite stays fast."""
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


def synchronize() -> None:
    import torch

    torch.cuda.synchronize()
