"""Shared test helpers: backends to compare, random boxes, CUDA availability."""
from __future__ import annotations

import numpy as np
import pytest

import nutrack.ops

HOST_BACKENDS = [b for b in nutrack.ops.available_backends() if b != "cuda"]


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available() and nutrack.ops.has_cuda()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU and the CUDA backend")


def random_boxes(rng: np.random.Generator, m: int, extent: float = 50.0,
                 size_range=(0.5, 5.0)) -> np.ndarray:
    centres = rng.uniform(-extent, extent, (m, 3))
    centres[:, 2] = rng.uniform(-2.0, 2.0, m)
    sizes = rng.uniform(size_range[0], size_range[1], (m, 3))
    yaw = rng.uniform(-np.pi, np.pi, (m, 1))
    return np.concatenate([centres, sizes, yaw], axis=1).astype(np.float32)
