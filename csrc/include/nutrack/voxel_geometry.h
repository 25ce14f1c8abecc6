// Voxel cells shared by the C++ loops, the CUDA kernels and (line for line) the numba twins in
// nutrack/ops/_numba_voxel.py.
//
// A point's cell on axis d is floor((p[d] - min[d]) / size[d]), evaluated in float32 with one
// IEEE subtraction and one IEEE division (no FMA, no reciprocal): every backend rounds the
// same way, so every backend puts every point in the same cell. The point is kept iff
// 0 <= cell < grid on every axis; NaN and infinite coordinates fail that test and are dropped.
// The grid sizes are computed once, on the host, by nutrack/ops/voxel.py (the only place that
// rounds (max - min) / size), and each is at most kMaxGridPerAxis so that the comparison
// against float(grid) is exact.
#pragma once

#include <cstdint>

#include "nutrack/common.h"

namespace nutrack {

constexpr int32_t kMaxGridPerAxis = 1 << 24;  // float32 represents every integer up to here

struct VoxelGrid {
  float min_x, min_y, min_z;     // pc_range[:3]
  float size_x, size_y, size_z;  // voxel_size
  int32_t nx, ny, nz;            // grid size per axis, each in [1, kMaxGridPerAxis]
};

// (p - lo) / size in float32: IEEE round-to-nearest subtraction and division on every backend
// (the CUDA intrinsics say so explicitly, whatever -prec-div or fast-math is set).
NT_HD float voxel_quotient(float p, float lo, float size) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(__fsub_rn(p, lo), size);
#else
  return (p - lo) / size;
#endif
}

// The cell (x, y, z) of point p; false when the point is dropped (outside the range, NaN/inf).
// With q the quotient above, "0 <= floor(q) < grid" is exactly "0 <= q < grid" (grid is an
// integer; NaN fails both), and for such q the conversion to int truncates, which is floor:
// so no floor call is needed, and every backend still computes floor(q).
NT_HD bool point_voxel_cell(const float* p, const VoxelGrid& g, int32_t* cx, int32_t* cy,
                            int32_t* cz) {
  const float qx = voxel_quotient(p[0], g.min_x, g.size_x);
  const float qy = voxel_quotient(p[1], g.min_y, g.size_y);
  const float qz = voxel_quotient(p[2], g.min_z, g.size_z);
  if (!(qx >= 0.0f && qx < static_cast<float>(g.nx) && qy >= 0.0f &&
        qy < static_cast<float>(g.ny) && qz >= 0.0f && qz < static_cast<float>(g.nz))) {
    return false;
  }
  *cx = static_cast<int32_t>(qx);
  *cy = static_cast<int32_t>(qy);
  *cz = static_cast<int32_t>(qz);
  return true;
}

// The linear index of cell (x, y, z) of cloud `cloud`, ordered (cloud, z, y, x). The caller
// guarantees num_clouds * nx * ny * nz < 2^62.
NT_HD int64_t voxel_key(int64_t cloud, int32_t x, int32_t y, int32_t z, const VoxelGrid& g) {
  return ((cloud * g.nz + z) * g.ny + y) * g.nx + x;
}

// The key of point p of cloud `cloud`, or -1 when the point is dropped.
NT_HD int64_t point_voxel_key(const float* p, int64_t cloud, const VoxelGrid& g) {
  int32_t x, y, z;
  if (!point_voxel_cell(p, g, &x, &y, &z)) return -1;
  return voxel_key(cloud, x, y, z, g);
}

// The cloud holding point i: the largest b < num_clouds with offsets[b] <= i (empty clouds are
// skipped). offsets (num_clouds + 1,) are the clouds' starts; unread when num_clouds == 1.
NT_HD int64_t cloud_of(const int64_t* offsets, int64_t num_clouds, int64_t i) {
  int64_t lo = 0, hi = num_clouds - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= i) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Hash tables for the voxel keys: 2^bits slots (at least twice the keys, at least 64), a key's
// home slot by Fibonacci hashing (the top `bits` bits of key * 2^64 / phi), linear probing.
// (The C++ backend first splits the keys into buckets by the top bits of the same product and
// gives each bucket a table indexed by the next bits.) No choice here affects any output.
constexpr uint64_t kVoxelHashMultiplier = 0x9E3779B97F4A7C15ull;

NT_HD int voxel_table_bits(int64_t num_keys) {
  int bits = 6;
  while ((int64_t{1} << bits) < 2 * num_keys) ++bits;
  return bits;
}

NT_HD uint64_t voxel_home_slot(int64_t key, int bits) {
  return (static_cast<uint64_t>(key) * kVoxelHashMultiplier) >> (64 - bits);
}

}  // namespace nutrack
