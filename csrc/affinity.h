// Pairwise box affinity — the contract of the op (the numba twin in
// nutrack/ops/_numba_affinity.py follows it line for line).
//
// frames_a  (M, kBoxFrameWidth) float32 box frames (csrc/include/nutrack/common.h), made from
//           (M, 7) boxes x, y, z, dx, dy, dz, yaw by nutrack.ops._boxes.box_frames.
// frames_b  (N, kBoxFrameWidth) float32, the same for the second set.
// metric    0 center_distance, 1 bev_iou, 2 iou_3d, 3 giou_bev, 4 giou_3d
//           (nutrack::metric in include/nutrack/box_overlap.h, where they are defined).
// classes_a (M,) int64 and classes_b (N,) int64, or both null: where given, pairs with
//           classes_a[i] != classes_b[j] are not computed and take `fill`.
// out       (M, N) float32, row-major: out[i * N + j] = affinity(box a_i, box b_j).
//
// Every output is a function of the two frames (and classes) alone, computed by
// box_affinity<metric> in include/nutrack/box_overlap.h: the CPU and CUDA results are bit for
// bit the same. Indices are 64-bit (M * N passes 2^31 at 50k x 50k). Empty inputs are valid
// and write nothing. The CUDA launcher takes device pointers on `device` and enqueues on
// `stream` (the caller's current stream); it does not synchronise.
#pragma once

#include <cstdint>

namespace nutrack {

void pairwise_affinity_cpu(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
                           int metric, const int64_t* classes_a, const int64_t* classes_b,
                           float fill, float* out);

#ifdef NUTRACK_WITH_CUDA
void pairwise_affinity_cuda(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
                            int metric, const int64_t* classes_a, const int64_t* classes_b,
                            float fill, float* out, int device, uintptr_t stream);
#endif

}  // namespace nutrack
