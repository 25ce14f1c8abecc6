// The only pybind11 file. Arrays cross the boundary as raw addresses (uintptr_t) plus sizes:
// nutrack/ops validates, makes inputs contiguous float32 and allocates outputs with the
// caller's own array library (numpy, torch or cupy), so the module links against none of them.
// CPU entry points release the GIL; CUDA entry points enqueue on the stream they are given.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "points_in_boxes.h"

namespace py = pybind11;

namespace {

template <typename T>
T* ptr(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

nutrack::BoxGrid box_grid(uintptr_t params, int64_t nx, int64_t ny, uintptr_t cell_start,
                          uintptr_t cell_boxes) {
  const float* p = ptr<const float>(params);
  return nutrack::BoxGrid{p[0], p[1], p[2], nx, ny, ptr<const int64_t>(cell_start),
                          ptr<const int32_t>(cell_boxes)};
}

// Wraps a CPU launcher so that it runs without the GIL.
#define NT_CPU(fn) py::call_guard<py::gil_scoped_release>()

void bind_points_in_boxes(py::module_& m) {
  using namespace nutrack;
  // The host launchers also take the box grid built by nutrack/ops/_grid.py:
  // params (origin_x, origin_y, inv_cell) float32, nx, ny, cell_start int64, cell_boxes int32.
  m.def(
      "points_in_boxes_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, uintptr_t params,
         int64_t nx, int64_t ny, uintptr_t start, uintptr_t cells, uintptr_t out) {
        points_in_boxes_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                            box_grid(params, nx, ny, start, cells), ptr<int32_t>(out));
      },
      NT_CPU());
  m.def(
      "points_in_boxes_dense_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
         uintptr_t params, int64_t nx, int64_t ny, uintptr_t start, uintptr_t cells,
         uintptr_t out) {
        points_in_boxes_dense_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                  nb, box_grid(params, nx, ny, start, cells), ptr<uint8_t>(out));
      },
      NT_CPU());
  m.def(
      "points_in_boxes_count_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, uintptr_t params,
         int64_t nx, int64_t ny, uintptr_t start, uintptr_t cells, uintptr_t out) {
        points_in_boxes_count_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                  box_grid(params, nx, ny, start, cells), ptr<int64_t>(out));
      },
      NT_CPU());
  m.def(
      "points_in_boxes_pairs_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, uintptr_t params,
         int64_t nx, int64_t ny, uintptr_t start, uintptr_t cells, uintptr_t offsets,
         uintptr_t pairs) {
        points_in_boxes_pairs_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                  box_grid(params, nx, ny, start, cells),
                                  ptr<const int64_t>(offsets), ptr<int64_t>(pairs));
      },
      NT_CPU());
  m.def(
      "points_in_polygons_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, uintptr_t polygons, int64_t nb, int64_t k,
         bool clockwise, uintptr_t out) {
        points_in_polygons_cpu(ptr<const float>(points), n, stride, ptr<const float>(polygons),
                               nb, k, clockwise, ptr<uint8_t>(out));
      },
      NT_CPU());
#ifdef NUTRACK_WITH_CUDA
  m.def("points_in_boxes_cuda", [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames,
                                   int64_t nb, uintptr_t out, int device, uintptr_t stream) {
    points_in_boxes_cuda(ptr<const float>(points), n, stride, ptr<const float>(frames), nb,
                         ptr<int32_t>(out), device, stream);
  });
  m.def("points_in_boxes_dense_cuda", [](uintptr_t points, int64_t n, int64_t stride,
                                         uintptr_t frames, int64_t nb, uintptr_t out, int device,
                                         uintptr_t stream) {
    points_in_boxes_dense_cuda(ptr<const float>(points), n, stride, ptr<const float>(frames), nb,
                               ptr<uint8_t>(out), device, stream);
  });
  m.def("points_in_boxes_count_cuda", [](uintptr_t points, int64_t n, int64_t stride,
                                         uintptr_t frames, int64_t nb, uintptr_t out, int device,
                                         uintptr_t stream) {
    points_in_boxes_count_cuda(ptr<const float>(points), n, stride, ptr<const float>(frames), nb,
                               ptr<int64_t>(out), device, stream);
  });
  m.def("points_in_boxes_pairs_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           uintptr_t offsets, uintptr_t pairs, int device, uintptr_t stream) {
          points_in_boxes_pairs_cuda(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                     nb, ptr<const int64_t>(offsets), ptr<int64_t>(pairs), device,
                                     stream);
        });
  m.def("points_in_polygons_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t polygons, int64_t nb, int64_t k,
           bool clockwise, uintptr_t out, int device, uintptr_t stream) {
          points_in_polygons_cuda(ptr<const float>(points), n, stride, ptr<const float>(polygons),
                                  nb, k, clockwise, ptr<uint8_t>(out), device, stream);
        });
  m.def("points_in_boxes_naive_cuda", [](uintptr_t points, int64_t n, int64_t stride,
                                         uintptr_t boxes, int64_t nb, uintptr_t out, int device,
                                         uintptr_t stream) {
    points_in_boxes_naive_cuda(ptr<const float>(points), n, stride, ptr<const float>(boxes), nb,
                               ptr<int32_t>(out), device, stream);
  });
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "nutrack native kernels (C++/OpenMP and, when built with it, CUDA)";
#ifdef NUTRACK_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  bind_points_in_boxes(m);
}
