// CUDA kernels over the shared geometry in include/nutrack/points_geometry.h.
//
// Per-point kernels stage the box frames through shared memory in tiles of one block's width,
// so each frame is read from global memory once per block rather than once per point, and the
// conservative BEV prefilter rejects most (point, box) pairs after one subtraction.
#include "cuda_utils.h"
#include "points_in_boxes.h"

#include "nutrack/points_geometry.h"

namespace nutrack {
namespace {

constexpr int kTile = kThreadsPerBlock;

// Walks every box for the point owned by this thread, tile by tile; `visit(j)` is called for
// each box j containing the point and returns false to stop visiting. All threads of the block
// take part in loading every tile, including those without a point or already done.
template <typename Visit>
__device__ void for_each_containing_box(const float* __restrict__ frames, int64_t m, bool active,
                                        float px, float py, float pz, Visit visit) {
  __shared__ float tile[kTile * kBoxFrameWidth];
  for (int64_t base = 0; base < m; base += kTile) {
    const int count = static_cast<int>(m - base < kTile ? m - base : kTile);
    __syncthreads();
    for (int t = threadIdx.x; t < count * kBoxFrameWidth; t += blockDim.x) {
      tile[t] = frames[base * kBoxFrameWidth + t];
    }
    __syncthreads();
    if (!active) continue;
    for (int j = 0; j < count; ++j) {
      if (point_in_box_frame(px, py, pz, tile + j * kBoxFrameWidth) && !visit(base + j)) {
        active = false;
        break;
      }
    }
  }
}

__global__ void first_box_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                                 const float* __restrict__ frames, int64_t m,
                                 int32_t* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = i < n;
  const float* p = points + (valid ? i : 0) * stride;
  const float px = valid ? p[0] : 0.0f, py = valid ? p[1] : 0.0f, pz = valid ? p[2] : 0.0f;
  int32_t found = -1;
  for_each_containing_box(frames, m, valid, px, py, pz, [&](int64_t j) {
    found = static_cast<int32_t>(j);
    return false;
  });
  if (valid) out[i] = found;
}

__global__ void count_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                             const float* __restrict__ frames, int64_t m,
                             int64_t* __restrict__ counts) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = i < n;
  const float* p = points + (valid ? i : 0) * stride;
  const float px = valid ? p[0] : 0.0f, py = valid ? p[1] : 0.0f, pz = valid ? p[2] : 0.0f;
  int64_t count = 0;
  for_each_containing_box(frames, m, valid, px, py, pz, [&](int64_t) {
    ++count;
    return true;
  });
  if (valid) counts[i] = count;
}

__global__ void pairs_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                             const float* __restrict__ frames, int64_t m,
                             const int64_t* __restrict__ offsets, int64_t* __restrict__ pairs) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = i < n;
  const float* p = points + (valid ? i : 0) * stride;
  const float px = valid ? p[0] : 0.0f, py = valid ? p[1] : 0.0f, pz = valid ? p[2] : 0.0f;
  int64_t slot = valid ? offsets[i] : 0;
  for_each_containing_box(frames, m, valid, px, py, pz, [&](int64_t j) {
    pairs[2 * slot] = i;
    pairs[2 * slot + 1] = j;
    ++slot;
    return true;
  });
}

// Dense outputs: one thread per (point, box) pair, so neighbouring threads write neighbouring
// bytes of the (N, M) output.
__global__ void dense_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                             const float* __restrict__ frames, int64_t m,
                             uint8_t* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * m) return;
  const int64_t i = idx / m, j = idx - i * m;
  const float* p = points + i * stride;
  out[idx] = point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth) ? 1 : 0;
}

__global__ void polygons_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                                const float* __restrict__ polygons, int64_t m, int64_t k,
                                bool clockwise, uint8_t* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * m) return;
  const int64_t i = idx / m, j = idx - i * m;
  const float* p = points + i * stride;
  out[idx] = point_in_convex_polygon(p[0], p[1], polygons + j * k * 2, k, clockwise) ? 1 : 0;
}

// The baseline design found in common public kernels, kept for the benchmarks.
__global__ void naive_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                             const float* __restrict__ boxes, int64_t m,
                             int32_t* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* p = points + i * stride;
  int32_t found = -1;
  for (int64_t j = 0; j < m; ++j) {
    const float* b = boxes + j * 7;
    const float dz = p[2] - b[2];
    if (fabsf(dz) > b[5] * 0.5f) continue;
    const float c = cosf(b[6]), s = sinf(b[6]);
    const float dx = p[0] - b[0], dy = p[1] - b[1];
    const float lx = c * dx + s * dy, ly = c * dy - s * dx;
    if (fabsf(lx) <= b[3] * 0.5f && fabsf(ly) <= b[4] * 0.5f) {
      found = static_cast<int32_t>(j);
      break;
    }
  }
  out[i] = found;
}

}  // namespace

void points_in_boxes_cuda(const float* points, int64_t n, int64_t point_stride,
                          const float* frames, int64_t m, int32_t* out, int device,
                          uintptr_t stream) {
  if (n == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(first_box_kernel, blocks_for(n), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, frames, m, out);
  NT_CUDA_CHECK_LAUNCH("points_in_boxes");
}

void points_in_boxes_dense_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, uint8_t* out, int device,
                                uintptr_t stream) {
  if (n == 0 || m == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(dense_kernel, blocks_for(n * m), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, frames, m, out);
  NT_CUDA_CHECK_LAUNCH("points_in_boxes_all (dense)");
}

void points_in_boxes_count_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, int64_t* counts, int device,
                                uintptr_t stream) {
  if (n == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(count_kernel, blocks_for(n), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, frames, m, counts);
  NT_CUDA_CHECK_LAUNCH("points_in_boxes_all (count)");
}

void points_in_boxes_pairs_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* frames, int64_t m, const int64_t* offsets,
                                int64_t* pairs, int device, uintptr_t stream) {
  if (n == 0 || m == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(pairs_kernel, blocks_for(n), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, frames, m, offsets, pairs);
  NT_CUDA_CHECK_LAUNCH("points_in_boxes_all (pairs)");
}

void points_in_polygons_cuda(const float* points, int64_t n, int64_t point_stride,
                             const float* polygons, int64_t m, int64_t k, bool clockwise,
                             uint8_t* out, int device, uintptr_t stream) {
  if (n == 0 || m == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(polygons_kernel, blocks_for(n * m), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, polygons, m, k, clockwise, out);
  NT_CUDA_CHECK_LAUNCH("points_in_polygons");
}

void points_in_boxes_naive_cuda(const float* points, int64_t n, int64_t point_stride,
                                const float* boxes7, int64_t m, int32_t* out, int device,
                                uintptr_t stream) {
  if (n == 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(naive_kernel, blocks_for(n), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, boxes7, m, out);
  NT_CUDA_CHECK_LAUNCH("points_in_boxes_naive");
}

}  // namespace nutrack
