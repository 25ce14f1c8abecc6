// OpenMP loops over the shared geometry in include/nutrack/points_geometry.h.
#include "points_in_boxes.h"

#include "nutrack/points_geometry.h"

namespace nutrack {

void points_in_boxes_cpu(const float* points, int64_t n, int64_t point_stride,
                         const float* frames, int64_t m, int32_t* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    int32_t found = -1;
    for (int64_t j = 0; j < m; ++j) {
      if (point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth)) {
        found = static_cast<int32_t>(j);
        break;
      }
    }
    out[i] = found;
  }
}

void points_in_boxes_dense_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, int64_t m, uint8_t* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    uint8_t* row = out + i * m;
    for (int64_t j = 0; j < m; ++j) {
      row[j] = point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth) ? 1 : 0;
    }
  }
}

void points_in_boxes_count_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, int64_t m, int64_t* counts) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    int64_t count = 0;
    for (int64_t j = 0; j < m; ++j) {
      count += point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth) ? 1 : 0;
    }
    counts[i] = count;
  }
}

void points_in_boxes_pairs_cpu(const float* points, int64_t n, int64_t point_stride,
                               const float* frames, int64_t m, const int64_t* offsets,
                               int64_t* pairs) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    int64_t slot = offsets[i];
    for (int64_t j = 0; j < m; ++j) {
      if (point_in_box_frame(p[0], p[1], p[2], frames + j * kBoxFrameWidth)) {
        pairs[2 * slot] = i;
        pairs[2 * slot + 1] = j;
        ++slot;
      }
    }
  }
}

void points_in_polygons_cpu(const float* points, int64_t n, int64_t point_stride,
                            const float* polygons, int64_t m, int64_t k, bool clockwise,
                            uint8_t* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points + i * point_stride;
    uint8_t* row = out + i * m;
    for (int64_t j = 0; j < m; ++j) {
      row[j] = point_in_convex_polygon(p[0], p[1], polygons + j * k * 2, k, clockwise) ? 1 : 0;
    }
  }
}

}  // namespace nutrack
