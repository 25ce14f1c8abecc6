// Shared by the C++ and CUDA code: the host/device qualifier for the inline geometry.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define NT_HD __host__ __device__ __forceinline__
#else
#define NT_HD inline
#endif

namespace nutrack {

// A box as the kernels see it: one float32 row of kBoxFrameWidth values, made once per call
// by nutrack.ops._boxes.box_frames (the ONLY place that evaluates cos/sin, so that every
// backend reads the very same rotation):
//   cx, cy, cz      centre
//   hx, hy, hz      half extents (dx/2, dy/2, dz/2)
//   c, s            cos(yaw), sin(yaw) rounded to float32 from float64
//   rx, ry          half extents of the box's axis-aligned BEV bounds, inflated by 0.1 %:
//                   a conservative prefilter only; it never decides a point near a face.
constexpr int kBoxFrameWidth = 10;

namespace frame {
constexpr int cx = 0, cy = 1, cz = 2, hx = 3, hy = 4, hz = 5, c = 6, s = 7, rx = 8, ry = 9;
}

NT_HD float abs_f32(float v) { return v < 0.0f ? -v : v; }

}  // namespace nutrack
