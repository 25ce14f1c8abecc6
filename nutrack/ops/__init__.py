"""nutrack's kernels as a library.

Every op takes numpy arrays, torch tensors (CPU or CUDA) or cupy arrays and returns the same
kind of array on the same device. `backend='auto'` runs CUDA for device inputs and the C++
(threaded) kernels for host inputs, falling back to numba when nutrack._C is not built; pass
`backend='cuda' | 'cpu' | 'numba'` to choose. Bad input raises ValueError naming the argument.
"""
from nutrack.ops._backend import NativeBackendUnavailable, has_cpu, has_cuda, why_unavailable
from nutrack.ops._boxes import box_frames
from nutrack.ops.affinity import METRICS as AFFINITY_METRICS
from nutrack.ops.affinity import pairwise_affinity
from nutrack.ops.points import points_in_boxes, points_in_boxes_all, points_in_polygons
from nutrack.ops.voxel import (VoxelGrid, VoxelizeResult, point_voxel_coors, voxel_grid, voxelize,
                               voxelize_batch)


def available_backends() -> list:
    """The backends this installation can run: a subset of ['cuda', 'cpu', 'numba']."""
    return [b for b, ok in (("cuda", has_cuda()), ("cpu", has_cpu()), ("numba", True)) if ok]


__all__ = [
    "AFFINITY_METRICS",
    "NativeBackendUnavailable",
    "available_backends",
    "box_frames",
    "has_cpu",
    "has_cuda",
    "pairwise_affinity",
    "points_in_boxes",
    "points_in_boxes_all",
    "points_in_polygons",
    "point_voxel_coors",
    "voxel_grid",
    "VoxelGrid",
    "VoxelizeResult",
    "voxelize",
    "voxelize_batch",
    "why_unavailable",
]
