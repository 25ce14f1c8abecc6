// Parallel loops (threads.h) over the shared geometry in include/nutrack/box_overlap.h: one
// row (box a) per iteration, rows spread over threads.
#include <stdexcept>
#include <string>

#include "affinity.h"
#include "nutrack/box_overlap.h"
#include "threads.h"

namespace nutrack {
namespace {

// The pairs a thread takes at least (threads.h): below, one thread is faster than starting
// helpers, and it cannot stall behind a helper that shares its core with another process:
// the trackers call the op per frame and per class on small matrices (at 2^11 GIoU pairs a
// thread, the filter tracker lost 1.35x under one competing process). On one core a GIoU pair
// costs ~35-40 ns (boxes apart) to ~105 ns (overlapping), an IoU pair ~2-3 ns when apart (most
// pairs of a scene) to ~40 ns, a centre distance ~1.5 ns; each is ~0.3-1 ms of work.
template <int Metric>
constexpr int64_t min_pairs_per_thread() {
  return Metric == metric::center_distance ? (int64_t{1} << 20)
         : (Metric == metric::giou_bev || Metric == metric::giou_3d) ? (int64_t{1} << 13)
                                                                      : (int64_t{1} << 17);
}

// One row: box a against every box of b.
template <int Metric>
void affinity_row(const float* fa, const float* frames_b, int64_t n, const int64_t* classes_a_i,
                  const int64_t* classes_b, float fill, float* row) {
  Footprint pa;
  row_footprint(fa, pa);
  if (classes_a_i != nullptr) {
    const int64_t ca = *classes_a_i;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = classes_b[j] == ca ? box_affinity<Metric>(fa, pa, frames_b + j * kBoxFrameWidth)
                                  : fill;
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      row[j] = box_affinity<Metric>(fa, pa, frames_b + j * kBoxFrameWidth);
    }
  }
}

template <int Metric>
void affinity_rows(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
                   const int64_t* classes_a, const int64_t* classes_b, float fill, float* out) {
  // Chunks of a few rows, taken dynamically: rows with many overlapping boxes cost several
  // times the others.
  parallel_ranges(host_threads(m * n, min_pairs_per_thread<Metric>()), m, 4,
                  [&](int64_t begin, int64_t end, int) {
                    for (int64_t i = begin; i < end; ++i) {
                      affinity_row<Metric>(frames_a + i * kBoxFrameWidth, frames_b, n,
                                           classes_a == nullptr ? nullptr : classes_a + i,
                                           classes_b, fill, out + i * n);
                    }
                  });
}

}  // namespace

void pairwise_affinity_cpu(const float* frames_a, int64_t m, const float* frames_b, int64_t n,
                           int metric, const int64_t* classes_a, const int64_t* classes_b,
                           float fill, float* out) {
  if (m == 0 || n == 0) return;
  switch (metric) {
    case metric::center_distance:
      return affinity_rows<metric::center_distance>(frames_a, m, frames_b, n, classes_a,
                                                    classes_b, fill, out);
    case metric::bev_iou:
      return affinity_rows<metric::bev_iou>(frames_a, m, frames_b, n, classes_a, classes_b,
                                            fill, out);
    case metric::iou_3d:
      return affinity_rows<metric::iou_3d>(frames_a, m, frames_b, n, classes_a, classes_b, fill,
                                           out);
    case metric::giou_bev:
      return affinity_rows<metric::giou_bev>(frames_a, m, frames_b, n, classes_a, classes_b,
                                             fill, out);
    case metric::giou_3d:
      return affinity_rows<metric::giou_3d>(frames_a, m, frames_b, n, classes_a, classes_b,
                                            fill, out);
    default:
      throw std::invalid_argument("pairwise_affinity: unknown metric code " +
                                  std::to_string(metric));
  }
}

}  // namespace nutrack
