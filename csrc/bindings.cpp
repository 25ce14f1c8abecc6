// The only pybind11 file. Arrays cross the boundary as raw addresses (uintptr_t) plus sizes:
// nutrack/ops validates, makes inputs contiguous float32 and allocates outputs with the
// caller's own array library (numpy, torch or cupy), so the module links against none of them.
// CPU entry points release the GIL; CUDA entry points enqueue on the stream they are given.
//
// Every argument is named (py::arg) and nutrack/ops passes them by name, so an argument in the
// wrong place or under the wrong name is a TypeError, never a pointer read as a size. The
// names are those of the numba twins in nutrack/ops/_numba_*.py, which take the same arguments
// as the host launchers (arrays where these take addresses).
//
// Built twice: as nutrack._C (C++ launchers, and the CUDA ones when NUTRACK_WITH_CUDA), and,
// by the tests only, as the emulated module (NUTRACK_EMULATED: only the CUDA launchers, their
// kernels run on the CPU under HIP-CPU; see tests/cuda_emu.py and csrc/gpu_runtime.h).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "affinity.h"
#include "points_in_boxes.h"
#include "runtime.h"
#include "threads.h"
#include "voxelize.h"

#ifndef NUTRACK_MODULE_NAME
#define NUTRACK_MODULE_NAME _C
#endif

namespace py = pybind11;
using py::arg;

namespace {

template <typename T>
T* ptr(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

// The grid arrives as a tuple (min_x, min_y, min_z, size_x, size_y, size_z, nx, ny, nz) made
// by nutrack/ops/voxel.py; it is read while the GIL is held.
nutrack::VoxelGrid voxel_grid(const py::tuple& g) {
  if (g.size() != 9) throw py::value_error("grid: expected 9 values");
  return nutrack::VoxelGrid{g[0].cast<float>(),   g[1].cast<float>(),   g[2].cast<float>(),
                            g[3].cast<float>(),   g[4].cast<float>(),   g[5].cast<float>(),
                            g[6].cast<int32_t>(), g[7].cast<int32_t>(), g[8].cast<int32_t>()};
}

#ifndef NUTRACK_EMULATED
// The box grid of nutrack/ops/_grid.py: grid_params (origin_x, origin_y, inv_cell) float32,
// grid_nx, grid_ny, cell_start int64, cell_boxes int32.
nutrack::BoxGrid box_grid(uintptr_t params, int64_t nx, int64_t ny, uintptr_t cell_start,
                          uintptr_t cell_boxes) {
  const float* p = ptr<const float>(params);
  return nutrack::BoxGrid{p[0], p[1], p[2], nx, ny, ptr<const int64_t>(cell_start),
                          ptr<const int32_t>(cell_boxes)};
}

// The grid's five parameters, their names, and the BoxGrid they make, for every host launcher.
#define NT_GRID_PARAMS uintptr_t grid_params, int64_t grid_nx, int64_t grid_ny, \
                       uintptr_t cell_start, uintptr_t cell_boxes
#define NT_GRID_ARGS arg("grid_params"), arg("grid_nx"), arg("grid_ny"), arg("cell_start"), \
                     arg("cell_boxes")
#define NT_GRID() box_grid(grid_params, grid_nx, grid_ny, cell_start, cell_boxes)
const auto no_gil = py::call_guard<py::gil_scoped_release>();

void bind_points_cpu(py::module_& m) {
  using namespace nutrack;
  m.def("points_in_boxes_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, NT_GRID_PARAMS,
           uintptr_t out) {
          points_in_boxes_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                              NT_GRID(), ptr<int32_t>(out));
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), NT_GRID_ARGS, arg("out"), no_gil);
  m.def("points_in_boxes_dense_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           NT_GRID_PARAMS, uintptr_t out) {
          points_in_boxes_dense_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                    nb, NT_GRID(), ptr<uint8_t>(out));
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), arg("nb"), NT_GRID_ARGS,
        arg("out"), no_gil);
  m.def("points_in_boxes_count_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, NT_GRID_PARAMS,
           uintptr_t counts) {
          points_in_boxes_count_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                    NT_GRID(), ptr<int64_t>(counts));
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), NT_GRID_ARGS, arg("counts"),
        no_gil);
  m.def("points_in_boxes_pairs_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, NT_GRID_PARAMS,
           uintptr_t offsets, uintptr_t pairs) {
          points_in_boxes_pairs_cpu(ptr<const float>(points), n, stride, ptr<const float>(frames),
                                    NT_GRID(), ptr<const int64_t>(offsets), ptr<int64_t>(pairs));
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), NT_GRID_ARGS, arg("offsets"),
        arg("pairs"), no_gil);
  m.def("points_in_polygons_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t polygons, int64_t nb, int64_t k,
           bool clockwise, uintptr_t out) {
          points_in_polygons_cpu(ptr<const float>(points), n, stride, ptr<const float>(polygons),
                                 nb, k, clockwise, ptr<uint8_t>(out));
        },
        arg("points"), arg("n"), arg("stride"), arg("polygons"), arg("nb"), arg("k"),
        arg("clockwise"), arg("out"), no_gil);
}

void bind_voxelize_cpu(py::module_& m) {
  using namespace nutrack;
  m.def("voxelize_workspace_bytes_cpu", &voxelize_workspace_bytes_cpu, arg("n"), arg("capacity"));
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
        },
        arg("points"), arg("n"), arg("stride"), arg("grid"), arg("offsets"), arg("num_clouds"),
        arg("max_points"), arg("max_voxels"), arg("capacity"), arg("workspace"), arg("coors"),
        arg("cloud_column"), arg("num_points"), arg("stats"));
  m.def("voxelize_fill_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, int64_t capacity, uintptr_t workspace,
           int64_t num_voxels, int64_t max_points, uintptr_t num_points, uintptr_t voxels) {
          voxelize_fill_cpu(ptr<const float>(points), n, stride, capacity,
                            ptr<const void>(workspace), num_voxels, max_points,
                            ptr<const int32_t>(num_points), ptr<float>(voxels));
        },
        arg("points"), arg("n"), arg("stride"), arg("capacity"), arg("workspace"),
        arg("num_voxels"), arg("max_points"), arg("num_points"), arg("voxels"), no_gil);
  m.def("point_voxel_coors_cpu",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t out) {
          const VoxelGrid g = voxel_grid(grid);
          py::gil_scoped_release release;
          point_voxel_coors_cpu(ptr<const float>(points), n, stride, g, ptr<int32_t>(out));
        },
        arg("points"), arg("n"), arg("stride"), arg("grid"), arg("out"));
}

// classes_a / classes_b: int64 addresses, or 0 for no class masking.
void bind_affinity_cpu(py::module_& m) {
  using namespace nutrack;
  m.def("pairwise_affinity_cpu",
        [](uintptr_t frames_a, int64_t na, uintptr_t frames_b, int64_t nb, int metric,
           uintptr_t classes_a, uintptr_t classes_b, float fill, uintptr_t out) {
          pairwise_affinity_cpu(ptr<const float>(frames_a), na, ptr<const float>(frames_b), nb,
                                metric, ptr<const int64_t>(classes_a),
                                ptr<const int64_t>(classes_b), fill, ptr<float>(out));
        },
        arg("frames_a"), arg("na"), arg("frames_b"), arg("nb"), arg("metric"), arg("classes_a"),
        arg("classes_b"), arg("fill"), arg("out"), no_gil);
}
#endif  // !NUTRACK_EMULATED

#ifdef NUTRACK_WITH_CUDA
// Every CUDA launcher ends with the device ordinal and the stream (an address, 0 = default).
#define NT_ON arg("device"), arg("stream")

void bind_points_cuda(py::module_& m) {
  using namespace nutrack;
  m.def("points_in_boxes_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           uintptr_t out, int device, uintptr_t stream) {
          points_in_boxes_cuda(ptr<const float>(points), n, stride, ptr<const float>(frames), nb,
                               ptr<int32_t>(out), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), arg("nb"), arg("out"), NT_ON);
  m.def("points_in_boxes_dense_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           uintptr_t out, int device, uintptr_t stream) {
          points_in_boxes_dense_cuda(ptr<const float>(points), n, stride,
                                     ptr<const float>(frames), nb, ptr<uint8_t>(out), device,
                                     stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), arg("nb"), arg("out"), NT_ON);
  m.def("points_in_boxes_count_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           uintptr_t counts, int device, uintptr_t stream) {
          points_in_boxes_count_cuda(ptr<const float>(points), n, stride,
                                     ptr<const float>(frames), nb, ptr<int64_t>(counts), device,
                                     stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), arg("nb"), arg("counts"), NT_ON);
  m.def("points_in_boxes_pairs_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t frames, int64_t nb,
           uintptr_t offsets, uintptr_t pairs, int device, uintptr_t stream) {
          points_in_boxes_pairs_cuda(ptr<const float>(points), n, stride,
                                     ptr<const float>(frames), nb, ptr<const int64_t>(offsets),
                                     ptr<int64_t>(pairs), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("frames"), arg("nb"), arg("offsets"),
        arg("pairs"), NT_ON);
  m.def("points_in_polygons_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t polygons, int64_t nb, int64_t k,
           bool clockwise, uintptr_t out, int device, uintptr_t stream) {
          points_in_polygons_cuda(ptr<const float>(points), n, stride, ptr<const float>(polygons),
                                  nb, k, clockwise, ptr<uint8_t>(out), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("polygons"), arg("nb"), arg("k"),
        arg("clockwise"), arg("out"), NT_ON);
  m.def("points_in_boxes_naive_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, uintptr_t boxes, int64_t nb,
           uintptr_t out, int device, uintptr_t stream) {
          points_in_boxes_naive_cuda(ptr<const float>(points), n, stride, ptr<const float>(boxes),
                                     nb, ptr<int32_t>(out), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("boxes"), arg("nb"), arg("out"), NT_ON);
}

void bind_voxelize_cuda(py::module_& m) {
  using namespace nutrack;
  // Takes a stream like every CUDA entry point (so one call site serves all backends); the
  // size depends on the device only.
  m.def("voxelize_workspace_bytes_cuda",
        [](int64_t n, int64_t capacity, int device, uintptr_t) {
          return voxelize_workspace_bytes_cuda(n, capacity, device);
        },
        arg("n"), arg("capacity"), NT_ON);
  m.def("voxelize_assign_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t offsets,
           int64_t num_clouds, int64_t max_points, int64_t max_voxels, int64_t capacity,
           uintptr_t workspace, uintptr_t coors, bool cloud_column, uintptr_t num_points,
           uintptr_t stats, int device, uintptr_t stream) {
          voxelize_assign_cuda(ptr<const float>(points), n, stride, voxel_grid(grid),
                               ptr<const int64_t>(offsets), num_clouds, max_points, max_voxels,
                               capacity, ptr<void>(workspace), ptr<int32_t>(coors), cloud_column,
                               ptr<int32_t>(num_points), ptr<int64_t>(stats), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("grid"), arg("offsets"), arg("num_clouds"),
        arg("max_points"), arg("max_voxels"), arg("capacity"), arg("workspace"), arg("coors"),
        arg("cloud_column"), arg("num_points"), arg("stats"), NT_ON);
  m.def("voxelize_fill_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, int64_t capacity, uintptr_t workspace,
           int64_t num_voxels, int64_t max_points, uintptr_t num_points, uintptr_t voxels,
           int device, uintptr_t stream) {
          voxelize_fill_cuda(ptr<const float>(points), n, stride, capacity,
                             ptr<const void>(workspace), num_voxels, max_points,
                             ptr<const int32_t>(num_points), ptr<float>(voxels), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("capacity"), arg("workspace"),
        arg("num_voxels"), arg("max_points"), arg("num_points"), arg("voxels"), NT_ON);
  m.def("point_voxel_coors_cuda",
        [](uintptr_t points, int64_t n, int64_t stride, const py::tuple& grid, uintptr_t out,
           int device, uintptr_t stream) {
          point_voxel_coors_cuda(ptr<const float>(points), n, stride, voxel_grid(grid),
                                 ptr<int32_t>(out), device, stream);
        },
        arg("points"), arg("n"), arg("stride"), arg("grid"), arg("out"), NT_ON);
}

void bind_affinity_cuda(py::module_& m) {
  using namespace nutrack;
  m.def("pairwise_affinity_cuda",
        [](uintptr_t frames_a, int64_t na, uintptr_t frames_b, int64_t nb, int metric,
           uintptr_t classes_a, uintptr_t classes_b, float fill, uintptr_t out, int device,
           uintptr_t stream) {
          pairwise_affinity_cuda(ptr<const float>(frames_a), na, ptr<const float>(frames_b), nb,
                                 metric, ptr<const int64_t>(classes_a),
                                 ptr<const int64_t>(classes_b), fill, ptr<float>(out), device,
                                 stream);
        },
        arg("frames_a"), arg("na"), arg("frames_b"), arg("nb"), arg("metric"), arg("classes_a"),
        arg("classes_b"), arg("fill"), arg("out"), NT_ON);
}
#endif  // NUTRACK_WITH_CUDA

}  // namespace

PYBIND11_MODULE(NUTRACK_MODULE_NAME, m) {
  m.doc() = "nutrack native kernels (C++ and, when built with it, CUDA)";
#ifdef NUTRACK_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
#ifdef NUTRACK_EMULATED
  m.attr("emulated") = true;  // the CUDA launchers run on the CPU under HIP-CPU (tests only)
#else
  m.attr("emulated") = false;
  // The host loops' thread policy (csrc/threads.h), exposed for the tests and for users who
  // want to see what a call of a given size would use.
  m.def("host_threads", &nutrack::host_threads, arg("work"), arg("min_work_per_thread"));
  bind_points_cpu(m);
  bind_affinity_cpu(m);
  bind_voxelize_cpu(m);
#endif
#ifdef NUTRACK_WITH_CUDA
  m.def("synchronize_cuda", &nutrack::synchronize_cuda, arg("device"),
        py::call_guard<py::gil_scoped_release>());
  bind_points_cuda(m);
  bind_affinity_cuda(m);
  bind_voxelize_cuda(m);
#endif
}
