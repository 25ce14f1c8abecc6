// Voxelization — the contract of the op family (the numba twins in nutrack/ops/_numba_voxel.py
// and the reference in tests/test_voxelize.py follow it exactly).
//
// points    (N, C) float32, row-major, C >= 3: x, y, z, features...; `point_stride` = C.
//           The clouds of a batch are concatenated; cloud b holds rows offsets[b] to
//           offsets[b + 1] - 1. N < 2^31.
// grid      min corner, voxel size and grid size (include/nutrack/voxel_geometry.h). A point's
//           cell is floor((p - min) / size) per axis in float32; it is kept iff
//           0 <= cell < grid on every axis (NaN and out-of-range points are dropped).
// offsets   (num_clouds + 1,) int64 cloud starts (device memory for CUDA). May be null when
//           num_clouds == 1 (one cloud of N points).
//
// Voxels are numbered in order of first appearance (cloud by cloud, in input order); a cloud
// keeps its first `max_voxels` voxels and drops the rest. A voxel keeps its first
// `max_points` points in input order. Nothing depends on thread scheduling.
//
// Two phases, so that the caller can allocate the (V, max_points, C) output once V is known:
//
// voxelize_assign   Numbers the voxels. Writes, for v < V:
//                     coors       (capacity, 3) int32 (z, y, x), or (capacity, 4)
//                                 (cloud, z, y, x) when `cloud_column`;
//                     num_points  (capacity,) int32, in [1, max_points];
//                     stats       int64 [V, number of dropped points];
//                   and, in `workspace`, what voxelize_fill reads. `capacity` is
//                   sum over clouds of min(points in the cloud, max_voxels) >= V, >= 1.
// voxelize_fill     Writes voxels (V, max_points, C) float32: row s < num_points[v] of voxel v
//                   is the s-th point of the voxel (all C columns), later rows are zero. Takes
//                   the workspace of the voxelize_assign call with the same n and capacity.
// point_voxel_coors out (N, 3) int32 (z, y, x) per point; a row of -1 for a dropped point.
//
// The workspace is `voxelize_workspace_bytes_*(n, capacity)` bytes allocated by the caller
// (on the device, for CUDA), uninitialised. The CUDA launchers take device pointers on
// `device` (stats included) and enqueue on `stream`; they do not synchronise — the caller
// reads stats[0] (one synchronisation) before it allocates the voxels. Empty input (n == 0)
// is the caller's to handle: the launchers require n >= 1.
#pragma once

#include <cstdint>

#include "nutrack/voxel_geometry.h"

namespace nutrack {

int64_t voxelize_workspace_bytes_cpu(int64_t n, int64_t capacity);
void voxelize_assign_cpu(const float* points, int64_t n, int64_t point_stride,
                         const VoxelGrid& grid, const int64_t* offsets, int64_t num_clouds,
                         int64_t max_points, int64_t max_voxels, int64_t capacity,
                         void* workspace, int32_t* coors, bool cloud_column,
                         int32_t* num_points, int64_t* stats);
void voxelize_fill_cpu(const float* points, int64_t n, int64_t point_stride, int64_t capacity,
                       const void* workspace, int64_t num_voxels, int64_t max_points,
                       const int32_t* num_points, float* voxels);
void point_voxel_coors_cpu(const float* points, int64_t n, int64_t point_stride,
                           const VoxelGrid& grid, int32_t* out);

#ifdef NUTRACK_WITH_CUDA
int64_t voxelize_workspace_bytes_cuda(int64_t n, int64_t capacity, int device);
void voxelize_assign_cuda(const float* points, int64_t n, int64_t point_stride,
                          const VoxelGrid& grid, const int64_t* offsets, int64_t num_clouds,
                          int64_t max_points, int64_t max_voxels, int64_t capacity,
                          void* workspace, int32_t* coors, bool cloud_column,
                          int32_t* num_points, int64_t* stats, int device, uintptr_t stream);
void voxelize_fill_cuda(const float* points, int64_t n, int64_t point_stride, int64_t capacity,
                        const void* workspace, int64_t num_voxels, int64_t max_points,
                        const int32_t* num_points, float* voxels, int device,
                        uintptr_t stream);
void point_voxel_coors_cuda(const float* points, int64_t n, int64_t point_stride,
                            const VoxelGrid& grid, int32_t* out, int device, uintptr_t stream);
#endif

}  // namespace nutrack
