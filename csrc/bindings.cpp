// The only pybind11 file. Arrays cross the boundary as raw addresses (uintptr_t) plus sizes:
// nutrack/ops validates, makes inputs contiguous float32 and allocates outputs with the
// caller's own array library (numpy, torch or cupy), so the module links against none of them.
// CPU entry points release the GIL; CUDA entry points enqueue on the stream they are given.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "affinity.h"
#include "points_in_boxes.h"
#include "voxelize.h"

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

// ---- voxelize (csrc/voxelize.h) ------------------------------------------------------------
// The grid arrives as a tuple (min_x, min_y, min_z, size_x, size_y, size_z, nx, ny, nz) made
// by nutrack/ops/voxel.py; it is read while the GIL is held, then the kernels run without it.
nutrack::VoxelGrid voxel_grid(const py::tuple& g) {
  if (g.size() != 9) throw py::value_error("voxel grid: expected 9 values");
  return nutrack::VoxelGrid{g[0].cast<float>(),   g[1].cast<float>(),   g[2].cast<float>(),
                            g[3].cast<float>(),   g[4].cast<float>(),   g[5].cast<float>(),
                            g[6].cast<int32_t>(), g[7].cast<int32_t>(), g[8].cast<int32_t>()};
}

void bind_voxelize(py::module_& m) {
  using namespace nutrack;
  m.def("voxelize_workspace_bytes_cpu", &voxelize_workspace_bytes_cpu);
  m.def("voxelize_assign_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t offsets,
           int64_t num_clouds, int64_t max_points, int64_t max_voxels, int64_t capacity,
           uintptr_t workspace, uintptr_t coors, bool cloud_column, uintptr_t num_points,
           uintptr_t stats) {
          const VoxelGrid g = voxel_grid(grid);
          py::gil_scoped_release release;
          voxelize_assign_cpu(ptr<const float>(points), n, stride, g, ptr<const int64_t>(offsets),
                              num_clouds, max_points, max_voxels, capacity, ptr<void>(workspace),
                              ptr<int32_t>(coors), cloud_column, ptr<int32_t>(num_points),
                              ptr<int64_t>(stats));
        });
  m.def(
      "voxelize_fill_cpu",
      [](uintptr_t points, int64_t n, int64_t stride, int64_t capacity, uintptr_t workspace,
         int64_t num_voxels, int64_t max_points, uintptr_t num_points, uintptr_t voxels) {
        voxelize_fill_cpu(ptr<const float>(points), n, stride, capacity,
                          ptr<const void>(workspace), num_voxels, max_points,
                          ptr<const int32_t>(num_points), ptr<float>(voxels));
      },
      NT_CPU());
  m.def("point_voxel_coors_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t out) {
          const VoxelGrid g = voxel_grid(grid);
          py::gil_scoped_release release;
          point_voxel_coors_cpu(ptr<const float>(points), n, stride, g, ptr<int32_t>(out));
        });
#ifdef NUTRACK_WITH_CUDA
  m.def("voxelize_workspace_bytes_cuda", &voxelize_workspace_bytes_cuda);
  m.def("voxelize_assign_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t offsets,
           int64_t num_clouds, int64_t max_points, int64_t max_voxels, int64_t capacity,
           uintptr_t workspace, uintptr_t coors, bool cloud_column, uintptr_t num_points,
           uintptr_t stats, int device, uintptr_t stream) {
          voxelize_assign_cuda(ptr<const float>(points), n, stride, voxel_grid(grid),
                               ptr<const int64_t>(offsets), num_clouds, max_points, max_voxels,
                               capacity, ptr<void>(workspace), ptr<int32_t>(coors), cloud_column,
                               ptr<int32_t>(num_points), ptr<int64_t>(stats), device, stream);
        });
  m.def("voxelize_fill_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, int64_t capacity, uintptr_t workspace,
           int64_t num_voxels, int64_t max_points, uintptr_t num_points, uintptr_t voxels,
           int device, uintptr_t stream) {
          voxelize_fill_cuda(ptr<const float>(points), n, stride, capacity,
                             ptr<const void>(workspace), num_voxels, max_points,
                             ptr<const int32_t>(num_points), ptr<float>(voxels), device, stream);
        });
  m.def("point_voxel_coors_cuda", [](uintptr_t points, int64_t n, int64_t stride,
                                     const py::tuple& grid, uintptr_t out, int device,
                                     uintptr_t stream) {
    point_voxel_coors_cuda(ptr<const float>(points), n, stride, voxel_grid(grid),
                           ptr<int32_t>(out), device, stream);
  });
#endif
}
// ---- end voxelize ----------------------------------------------------------------------------

// ----------------------------------------------------------------------------- affinity
// classes_a / classes_b: int64 addresses, or 0 for no class masking.
void bind_affinity(py::module_& m) {
  using namespace nutrack;
  m.def(
      "pairwise_affinity_cpu",
      [](uintptr_t frames_a, int64_t na, uintptr_t frames_b, int64_t nb, int metric,
         uintptr_t classes_a, uintptr_t classes_b, float fill, uintptr_t out) {
        pairwise_affinity_cpu(ptr<const float>(frames_a), na, ptr<const float>(frames_b), nb,
                              metric, ptr<const int64_t>(classes_a),
                              ptr<const int64_t>(classes_b), fill, ptr<float>(out));
      },
      NT_CPU());
#ifdef NUTRACK_WITH_CUDA
  m.def("pairwise_affinity_cuda",
        [](uintptr_t frames_a, int64_t na, uintptr_t frames_b, int64_t nb, int metric,
           uintptr_t classes_a, uintptr_t classes_b, float fill, uintptr_t out, int device,
           uintptr_t stream) {
          pairwise_affinity_cuda(ptr<const float>(frames_a), na, ptr<const float>(frames_b), nb,
                                 metric, ptr<const int64_t>(classes_a),
                                 ptr<const int64_t>(classes_b), fill, ptr<float>(out), device,
                                 stream);
        });
#endif
}
// ---- end affinity ----------------------------------------------------------------------------

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "nutrack native kernels (C++/OpenMP and, when built with it, CUDA)";
#ifdef NUTRACK_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  bind_points_in_boxes(m);
  bind_affinity(m);
  bind_voxelize(m);
}
