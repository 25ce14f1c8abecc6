// OpenMP loops over the shared geometry in include/nutrack/points_geometry.h. Each point
// tests only the boxes listed in its grid cell, in increasing index (see nutrack/ops/_grid.py).
#include "points_in_boxes.h"

#include "nutrack/points_geometry.h"

namespace nutrack {
namespace {

// Below this many points a loop runs on the calling thread: waking the OpenMP team (passive
// waits, see nutrack/ops/_backend.py) costs more than the work.
constexpr int64_t kParallelMinPoints = 16384;
// Dynamic chunks, not a static split: when another process shares a core, the thread on
// the free core takes more chunks instead of waiting for the slow one (issue 12, item 1).
constexpr int64_t kChunkPoints = 2048;

// Calls visit(j) for each box j containing point i, in increasing j, until visit returns false.
template <typename Visit>
inline void for_each_containing_box(const float* p, const float* frames, const BoxGrid& grid,
                                    Visit visit) {
  const int64_t cell = grid_cell(grid, p[0], p[1]);
  if (cell < 0) return;
  for (int64_t e = grid.cell_start[cell]; e < grid.cell_start[cell + 1]; ++e) {
    const int64_t j = grid.cell_boxes[e];
    if (point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth) && !visit(j)) return;
  }
}

}  // namespace

void points_in_boxes_cpu(const float* points, int64_t n, int64_t point_stride,
                         const float* frames, const BoxGrid& grid, int32_t* out) {
#pragma omp parallel for schedule(dynamic, kChunkPoints) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    int32_t found = -1;
    for_each_containing_box(points + i * point_stride, frames, grid, [&](int64_t j) {
      found = static_cast<int32_t>(j);
      return false;
    });
    out[i] = found;
  }
}

void points_in_boxes_dense_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, int64_t m, const BoxGrid& grid,
                               uint8_t* out) {
#pragma omp parallel for schedule(dynamic, kChunkPoints) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* row = out + i * m;
    for (int64_t j = 0; j < m; ++j) row[j] = 0;
    for_each_containing_box(points + i * point_stride, frames, grid, [&](int64_t j) {
      row[j] = 1;
      return true;
    });
  }
}

void points_in_boxes_count_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, const BoxGrid& grid, int64_t* counts) {
#pragma omp parallel for schedule(dynamic, kChunkPoints) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    int64_t count = 0;
    for_each_containing_box(points + i * point_stride, frames, grid, [&](int64_t) {
      ++count;
      return true;
    });
    counts[i] = count;
  }
}

void points_in_boxes_pairs_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, const BoxGrid& grid, const int64_t* offsets,
                               int64_t* pairs) {
#pragma omp parallel for schedule(dynamic, kChunkPoints) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    int64_t slot = offsets[i];
    for_each_containing_box(points + i * point_stride, frames, grid, [&](int64_t j) {
      pairs[2 * slot] = i;
      pairs[2 * slot + 1] = j;
      ++slot;
      return true;
    });
  }
}

void points_in_polygons_cpu(const float* points, int64_t n, int64_t point_stride,
                            const float* polygons, int64_t m, int64_t k, bool clockwise,
                            uint8_t* out) {
#pragma omp parallel for schedule(dynamic, kChunkPoints) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    uint8_t* row = out + i * m;
    for (int64_t j = 0; j < m; ++j) {
      row[j] = point_in_convex_polygon(p[0], p[1], polygons + j * k * 2, k, clockwise) ? 1 : 0;
    }
  }
}

}  // namespace nutrack
