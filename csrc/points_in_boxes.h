// Points in rotated boxes and in convex polygons — the contract of the op family.
//
// points    (N, C) float32, row-major, C >= 3 (C >= 2 for polygons): x, y, z, ...; only the
//           first three (two) columns are read; `point_stride` = C.
// frames    (M, kBoxFrameWidth) float32 box frames (csrc/include/nutrack/common.h),
//           made from (M, 7) boxes x, y, z, dx, dy, dz, yaw by nutrack.ops._boxes.box_frames.
// polygons  (M, K, 2) float32 convex polygons.
//
// points_in_boxes          out (N,) int32: index of the first box containing the point, or -1.
// points_in_boxes_dense    out (N, M) uint8 (bool): 1 where point i is in box j.
// points_in_boxes_count    out (N,) int64: how many boxes contain point i.
// points_in_boxes_pairs    out (P, 2) int64 (point, box) pairs, sorted by point then box;
//                          `offsets` (N,) int64 is the exclusive prefix sum of the counts.
// points_in_polygons       out (N, M) uint8 (bool), boundary inclusive.
//
// Faces are inclusive (|local| <= half extent), as the devkit's points_in_box. Indices are
// 64-bit (N * M passes 2^31 at nuScenes scale). Empty inputs are valid and write nothing.
// The CUDA launchers take device pointers on `device` and enqueue on `stream` (the caller's
// current stream); they do not synchronise.
#pragma once

#include <cstdint>

#include "nutrack/points_geometry.h"

namespace nutrack {

// Host launchers take the box grid of nutrack/ops/_grid.py (include/nutrack/points_geometry.h).
void points_in_boxes_cpu(const float* points, int64_t n, int64_t point_stride,
                         const float* frames, const BoxGrid& grid, int32_t* out);
void points_in_boxes_dense_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, int64_t m, const BoxGrid& grid,
                               uint8_t* out);
void points_in_boxes_count_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, const BoxGrid& grid, int64_t* counts);
void points_in_boxes_pairs_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, const BoxGrid& grid, const int64_t* offsets,
                               int64_t* pairs);
void points_in_polygons_cpu(const float* points, int64_t n, int64_t point_stride,
                            const float* polygons, int64_t m, int64_t k, bool clockwise,
                            uint8_t* out);

#ifdef NUTRACK_WITH_CUDA
void points_in_boxes_cuda(const float* points, int64_t n, int64_t point_stride,
                          const float* frames, int64_t m, int32_t* out, int device,
                          uintptr_t stream);
void points_in_boxes_dense_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, uint8_t* out, int device,
                                uintptr_t stream);
void points_in_boxes_count_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, int64_t* counts, int device,
                                uintptr_t stream);
void points_in_boxes_pairs_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, const int64_t* offsets,
                                int64_t* pairs, int device, uintptr_t stream);
void points_in_polygons_cuda(const float* points, int64_t n, int64_t point_stride,
                             const float* polygons, int64_t m, int64_t k, bool clockwise,
                             uint8_t* out, int device, uintptr_t stream);
// Benchmark baseline only: the design of common public kernels (one thread per point, every
// box read from global memory, cos/sin evaluated per pair). Not bit-identical to the others.
void points_in_boxes_naive_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* boxes7, int64_t m, int32_t* out, int device,
                                uintptr_t stream);
#endif

}  // namespace nutrack
