// CUDA kernel over the shared geometry in include/nutrack/box_overlap.h: one thread per
// (a, b) pair, bit-identical to the C++ loop in affinity_cpu.cpp.
//
// A block of kCols x kRows threads covers a kRows x kCols tile of the output. The tile's box
// frames (kRows of a, kCols of b) are staged once through shared memory, so each frame is read
// from global memory once per block instead of once per pair; threadIdx.x runs along a row, so
// a warp writes 32 consecutive floats of the output.
#include <stdexcept>
#include <string>

#include "affinity.h"
#include "cuda_utils.h"
#include "nutrack/box_overlap.h"

namespace nutrack {
namespace {

constexpr int kCols = 32;
constexpr int kRows = kThreadsPerBlock / kCols;  // 8
constexpr unsigned int kMaxGridY = 65535;

template <int Metric>
__global__ void affinity_kernel(const float* __restrict__ frames_a, int64_t m,
                                const float* __restrict__ frames_b, int64_t n,
                                const int64_t* __restrict__ classes_a,
                                const int64_t* __restrict__ classes_b, float fill,
                                float* __restrict__ out) {
  __shared__ float tile_a[kRows * kBoxFrameWidth];
  __shared__ float tile_b[kCols * kBoxFrameWidth];
  const int tid = threadIdx.y * kCols + threadIdx.x;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kCols;
  const int cols = static_cast<int>(n - col0 < kCols ? n - col0 : kCols);
  for (int t = tid; t < cols * kBoxFrameWidth; t += kThreadsPerBlock) {
    tile_b[t] = frames_b[col0 * kBoxFrameWidth + t];
  }
  const int64_t j = col0 + threadIdx.x;
  // Rows past 65535 blocks: the grid strides over row tiles (uniformly for the whole block,
  // so the barriers below are reached by every thread).
  for (int64_t row0 = static_cast<int64_t>(blockIdx.y) * kRows; row0 < m;
       row0 += static_cast<int64_t>(gridDim.y) * kRows) {
    const int rows = static_cast<int>(m - row0 < kRows ? m - row0 : kRows);
    __syncthreads();  // the previous tile_a is no longer read
    for (int t = tid; t < rows * kBoxFrameWidth; t += kThreadsPerBlock) {
      tile_a[t] = frames_a[row0 * kBoxFrameWidth + t];
    }
    __syncthreads();
    const int64_t i = row0 + threadIdx.y;
    if (i >= m || j >= n) continue;
    float fa[kBoxFrameWidth], fb[kBoxFrameWidth];
#pragma unroll
    for (int c = 0; c < kBoxFrameWidth; ++c) {
      fa[c] = tile_a[threadIdx.y * kBoxFrameWidth + c];
      fb[c] = tile_b[threadIdx.x * kBoxFrameWidth + c];
    }
    float value;
    if (classes_a != nullptr && classes_a[i] != classes_b[j]) {
      value = fill;
    } else {
      Footprint pa;
      row_footprint(fa, pa);
      value = box_affinity<Metric>(fa, pa, fb);
    }
    out[i * n + j] = value;
  }
}

template <int Metric>
void launch(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
            const int64_t* classes_a, const int64_t* classes_b, float fill, float* out,
            cudaStream_t stream) {
  const int64_t row_tiles = (m + kRows - 1) / kRows;
  const dim3 grid(blocks_for(n, kCols),
                  static_cast<unsigned int>(row_tiles < kMaxGridY ? row_tiles : kMaxGridY));
  const dim3 block(kCols, kRows);
  NT_LAUNCH(affinity_kernel<Metric>, grid, block, 0, stream, frames_a, m, frames_b, n, classes_a,
            classes_b, fill, out);
}

}  // namespace

void pairwise_affinity_cuda(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
                            int metric, const int64_t* classes_a, const int64_t* classes_b,
                            float fill, float* out, int device, uintptr_t stream) {
  if (m == 0 || n == 0) return;
  DeviceGuard guard(device);
  const cudaStream_t s = as_stream(stream);
  switch (metric) {
    case metric::center_distance:
      launch<metric::center_distance>(frames_a, m, frames_b, n, classes_a, classes_b, fill, out,
                                      s);
      break;
    case metric::bev_iou:
      launch<metric::bev_iou>(frames_a, m, frames_b, n, classes_a, classes_b, fill, out, s);
      break;
    case metric::iou_3d:
      launch<metric::iou_3d>(frames_a, m, frames_b, n, classes_a, classes_b, fill, out, s);
      break;
    case metric::giou_bev:
      launch<metric::giou_bev>(frames_a, m, frames_b, n, classes_a, classes_b, fill, out, s);
      break;
    case metric::giou_3d:
      launch<metric::giou_3d>(frames_a, m, frames_b, n, classes_a, classes_b, fill, out, s);
      break;
    default:
      throw std::invalid_argument("pairwise_affinity: unknown metric code " +
                                  std::to_string(metric));
  }
  NT_CUDA_CHECK_LAUNCH("pairwise_affinity");
}

}  // namespace nutrack
