// Point-in-region tests shared by the C++ loops, the CUDA kernels and (line for line) the
// numba twins in nutrack/ops/_numba_points.py. Only + - * / and comparisons: with FMA
// contraction off, every backend rounds identically and returns bit-identical answers.
#pragma once

#include "nutrack/common.h"

namespace nutrack {

// True when (px, py, pz) lies in the box, faces INCLUSIVE (|local| <= half extent), as the
// nuScenes devkit's points_in_box. `f` is one box-frame row (see common.h).
NT_HD bool point_in_box_frame(float px, float py, float pz, const float* f) {
  const float dx = px - f[frame::cx];
  if (abs_f32(dx) > f[frame::rx]) return false;  // cheap conservative rejects first
  const float dy = py - f[frame::cy];
  if (abs_f32(dy) > f[frame::ry]) return false;
  const float dz = pz - f[frame::cz];
  if (abs_f32(dz) > f[frame::hz]) return false;
  // Rotate by -yaw into the box frame.
  const float local_x = f[frame::c] * dx + f[frame::s] * dy;
  const float local_y = f[frame::c] * dy - f[frame::s] * dx;
  return abs_f32(local_x) <= f[frame::hx] && abs_f32(local_y) <= f[frame::hy];
}

// A uniform BEV grid listing each box in every cell its conservative bounds touch, box
// indices increasing within a cell (built by nutrack/ops/_grid.py; why it is exact is
// explained there). Used by the host backends.
struct BoxGrid {
  float origin_x, origin_y, inv_cell;
  int64_t nx, ny;
  const int64_t* cell_start;  // (nx * ny + 1,)
  const int32_t* cell_boxes;  // box indices grouped by cell
};

// The grid cell holding (px, py), or -1 when the point is outside every box's bounds.
NT_HD int64_t grid_cell(const BoxGrid& g, float px, float py) {
  const float tx = (px - g.origin_x) * g.inv_cell;
  const float ty = (py - g.origin_y) * g.inv_cell;
  if (!(tx >= 0.0f) || !(ty >= 0.0f) || tx >= static_cast<float>(g.nx) ||
      ty >= static_cast<float>(g.ny)) {
    return -1;
  }
  return static_cast<int64_t>(ty) * g.nx + static_cast<int64_t>(tx);
}

// True when (px, py) lies in the convex polygon `poly` (k vertices, x y interleaved),
// boundary INCLUSIVE. clockwise: vertices ordered clockwise in the x-right, y-up plane
// (the interior is on the right of every directed edge); otherwise counter-clockwise.
NT_HD bool point_in_convex_polygon(float px, float py, const float* poly, int64_t k,
                                   bool clockwise) {
  for (int64_t v = 0; v < k; ++v) {
    const int64_t prev = v == 0 ? k - 1 : v - 1;
    const float ex = poly[2 * v] - poly[2 * prev];
    const float ey = poly[2 * v + 1] - poly[2 * prev + 1];
    const float cross = ex * (py - poly[2 * prev + 1]) - ey * (px - poly[2 * prev]);
    if (clockwise ? cross > 0.0f : cross < 0.0f) return false;
  }
  return true;
}

}  // namespace nutrack
