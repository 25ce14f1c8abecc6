// Voxelization on CUDA over the shared cell function in include/nutrack/voxel_geometry.h.
// Deterministic: no output depends on which thread wins a race.
//
// voxelize_assign, all on the caller's stream, no host synchronisation:
//   keys     each point's key (linear cell index, -1 when dropped); dropped points counted
//            with one integer atomic per warp (order-independent).
//   insert   a GPU hash table (open addressing, atomicCAS on the 64-bit key) that records for
//            each key the MINIMUM point index (atomicMin): the voxel's first appearance.
//   flags    first[i] = 1 iff point i is the first point of its voxel.
//   scan     rank = exclusive prefix sum of first: voxels ranked by first appearance.
//   keep     a first point keeps its voxel iff its rank within its cloud < max_voxels;
//   scan     voxel number = exclusive prefix sum of keep (V = the total).
//   number   each point's voxel number (or the sentinel `capacity` when dropped); the first
//            point of each kept voxel writes its coors.
//   sort     a STABLE radix sort of (voxel number, point index): each voxel's points are
//            contiguous and in input order (`order`), the dropped ones at the end.
//   segments starts[v] = where voxel v's run begins; num_points = min(run length, max_points).
// voxelize_fill: one thread per (voxel, row) copies the point or writes zeros.
#include <climits>

#include "cuda_utils.h"
#include "device_algorithms.h"
#include "voxelize.h"
#include "workspace.h"

namespace nutrack {
namespace {

constexpr unsigned long long kEmptyKey = ~0ull;  // valid keys are < 2^62
constexpr int64_t kAlign = 256;

int bit_width(uint64_t v) {
  int bits = 0;
  while (v) {
    ++bits;
    v >>= 1;
  }
  return bits;
}

struct Workspace {
  int64_t* keys;                  // (n,)
  uint32_t* table_slot;           // (n,) the table slot of each kept point's key
  unsigned long long* table_keys; // (2^bits,)
  int32_t* table_first;           // (2^bits,) min point index per key
  int32_t* first;                 // (n + 1,) 1 for the first point of a voxel
  int32_t* rank;                  // (n + 1,)
  int32_t* keep;                  // (n + 1,) 1 for the first point of a kept voxel
  int32_t* number;                // (n + 1,) voxel number of each first point; [n] = V
  uint32_t* sort_keys_in;         // (n,)
  uint32_t* sort_keys_out;        // (n,)
  int32_t* sort_values_in;        // (n,)
  int32_t* order;                 // (n,) -> voxelize_fill: point indices grouped by voxel
  int32_t* starts;                // (capacity,) -> voxelize_fill
  void* temp;                     // scratch of device::exclusive_sum / stable_sort_pairs
  size_t temp_bytes;
  int bits;
  int sort_end_bit;
  int64_t bytes;
};

size_t cub_temp_bytes(int64_t n, int sort_end_bit) {
  size_t scan_bytes = 0, sort_bytes = 0;
  NT_CUDA_CHECK(device::exclusive_sum(nullptr, scan_bytes, nullptr, nullptr,
                                      static_cast<int>(n + 1)));
  NT_CUDA_CHECK(device::stable_sort_pairs(nullptr, sort_bytes, nullptr, nullptr, nullptr, nullptr,
                                          static_cast<int>(n), 0, sort_end_bit));
  return scan_bytes > sort_bytes ? scan_bytes : sort_bytes;
}

// The layout of the workspace; with base == nullptr only the size is computed.
Workspace carve(void* base, int64_t n, int64_t capacity) {
  Workspace ws{};
  ws.bits = voxel_table_bits(n);
  ws.sort_end_bit = bit_width(static_cast<uint64_t>(capacity));  // the sentinel is `capacity`
  ws.temp_bytes = cub_temp_bytes(n, ws.sort_end_bit);
  WorkspaceCarver<kAlign> carver(base);
  const int64_t table_size = int64_t{1} << ws.bits;
  ws.keys = carver.take<int64_t>(n);
  ws.table_slot = carver.take<uint32_t>(n);
  ws.table_keys = carver.take<unsigned long long>(table_size);
  ws.table_first = carver.take<int32_t>(table_size);
  ws.first = carver.take<int32_t>(n + 1);
  ws.rank = carver.take<int32_t>(n + 1);
  ws.keep = carver.take<int32_t>(n + 1);
  ws.number = carver.take<int32_t>(n + 1);
  ws.sort_keys_in = carver.take<uint32_t>(n);
  ws.sort_keys_out = carver.take<uint32_t>(n);
  ws.sort_values_in = carver.take<int32_t>(n);
  ws.order = carver.take<int32_t>(n);
  ws.starts = carver.take<int32_t>(capacity);
  ws.temp = carver.take<char>(static_cast<int64_t>(ws.temp_bytes));
  ws.bytes = carver.bytes();
  return ws;
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__global__ void init_table_kernel(unsigned long long* __restrict__ table_keys,
                                  int32_t* __restrict__ table_first, int64_t table_size) {
  const int64_t s = thread_index();
  if (s >= table_size) return;
  table_keys[s] = kEmptyKey;
  table_first[s] = INT_MAX;
}

__global__ void keys_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                            VoxelGrid grid, const int64_t* __restrict__ offsets,
                            int64_t num_clouds, int64_t* __restrict__ keys,
                            int64_t* __restrict__ stats) {
  const int64_t i = thread_index();
  bool dropped = false;
  if (i < n) {
    const int64_t key =
        point_voxel_key(points + i * stride, cloud_of(offsets, num_clouds, i), grid);
    keys[i] = key;
    dropped = key < 0;
  }
  // One atomic per warp, not per dropped point (a small pc_range can drop most points). Every
  // lane reaches the ballot: no thread returns early (blocks are whole warps).
  const unsigned warp_dropped = __ballot_sync(0xffffffffu, dropped);
  if ((threadIdx.x & 31) == 0 && warp_dropped != 0) {
    atomicAdd(reinterpret_cast<unsigned long long*>(stats + 1),
              static_cast<unsigned long long>(__popc(warp_dropped)));
  }
}

__global__ void insert_kernel(const int64_t* __restrict__ keys, int64_t n, int bits,
                              unsigned long long* __restrict__ table_keys,
                              int32_t* __restrict__ table_first,
                              uint32_t* __restrict__ table_slot) {
  const int64_t i = thread_index();
  if (i >= n) return;
  const int64_t key = keys[i];
  if (key < 0) return;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t s = voxel_home_slot(key, bits);
  // Terminates: the table has more slots than there are points.
  while (true) {
    const unsigned long long seen =
        atomicCAS(table_keys + s, kEmptyKey, static_cast<unsigned long long>(key));
    if (seen == kEmptyKey || seen == static_cast<unsigned long long>(key)) break;
    s = (s + 1) & mask;
  }
  atomicMin(table_first + s, static_cast<int32_t>(i));
  table_slot[i] = static_cast<uint32_t>(s);
}

__global__ void first_kernel(const int64_t* __restrict__ keys, int64_t n,
                             const int32_t* __restrict__ table_first,
                             const uint32_t* __restrict__ table_slot,
                             int32_t* __restrict__ first) {
  const int64_t i = thread_index();
  if (i > n) return;
  first[i] = i < n && keys[i] >= 0 && table_first[table_slot[i]] == static_cast<int32_t>(i);
}

__global__ void keep_kernel(const int32_t* __restrict__ first, const int32_t* __restrict__ rank,
                            int64_t n, const int64_t* __restrict__ offsets, int64_t num_clouds,
                            int64_t max_voxels, int32_t* __restrict__ keep) {
  const int64_t i = thread_index();
  if (i > n) return;
  int32_t kept = 0;
  if (i < n && first[i]) {
    const int64_t cloud_start = num_clouds == 1 ? 0 : offsets[cloud_of(offsets, num_clouds, i)];
    kept = static_cast<int64_t>(rank[i]) - rank[cloud_start] < max_voxels;
  }
  keep[i] = kept;
}

__global__ void number_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                              VoxelGrid grid, const int64_t* __restrict__ offsets,
                              int64_t num_clouds, const int64_t* __restrict__ keys,
                              const int32_t* __restrict__ table_first,
                              const uint32_t* __restrict__ table_slot,
                              const int32_t* __restrict__ keep,
                              const int32_t* __restrict__ number, uint32_t sentinel,
                              uint32_t* __restrict__ sort_keys, int32_t* __restrict__ sort_values,
                              int32_t* __restrict__ coors, bool cloud_column) {
  const int64_t i = thread_index();
  if (i >= n) return;
  uint32_t voxel = sentinel;
  if (keys[i] >= 0) {
    const int32_t f = table_first[table_slot[i]];
    if (keep[f]) {
      voxel = static_cast<uint32_t>(number[f]);
      if (f == i) {
        int32_t x = 0, y = 0, z = 0;
        point_voxel_cell(points + i * stride, grid, &x, &y, &z);
        int32_t* row = coors + static_cast<int64_t>(voxel) * (cloud_column ? 4 : 3);
        if (cloud_column) *row++ = static_cast<int32_t>(cloud_of(offsets, num_clouds, i));
        row[0] = z;
        row[1] = y;
        row[2] = x;
      }
    }
  }
  sort_keys[i] = voxel;
  sort_values[i] = static_cast<int32_t>(i);
}

// Over the sorted voxel numbers: each run's start, and (temporarily, in num_points) its end.
__global__ void segments_kernel(const uint32_t* __restrict__ sorted, int64_t n, uint32_t sentinel,
                                int32_t* __restrict__ starts, int32_t* __restrict__ num_points) {
  const int64_t j = thread_index();
  if (j >= n) return;
  const uint32_t v = sorted[j];
  if (v == sentinel) return;
  if (j == 0 || sorted[j - 1] != v) starts[v] = static_cast<int32_t>(j);
  if (j == n - 1 || sorted[j + 1] != v) num_points[v] = static_cast<int32_t>(j + 1);
}

__global__ void counts_kernel(const int32_t* __restrict__ number, int64_t n, int64_t capacity,
                              const int32_t* __restrict__ starts, int64_t max_points,
                              int32_t* __restrict__ num_points, int64_t* __restrict__ stats) {
  const int64_t v = thread_index();
  const int64_t num_voxels = number[n];
  if (v == 0) stats[0] = num_voxels;
  if (v >= capacity || v >= num_voxels) return;
  const int64_t count = num_points[v] - starts[v];
  num_points[v] = static_cast<int32_t>(count < max_points ? count : max_points);
}

__global__ void fill_kernel(const float* __restrict__ points, int64_t stride,
                            const int32_t* __restrict__ order, const int32_t* __restrict__ starts,
                            const int32_t* __restrict__ num_points, int64_t num_voxels,
                            int64_t max_points, float* __restrict__ voxels) {
  const int64_t idx = thread_index();
  if (idx >= num_voxels * max_points) return;
  const int64_t v = idx / max_points, s = idx - v * max_points;
  float* out = voxels + idx * stride;
  if (s < num_points[v]) {
    const float* p = points + static_cast<int64_t>(order[starts[v] + s]) * stride;
    for (int64_t c = 0; c < stride; ++c) out[c] = p[c];
  } else {
    for (int64_t c = 0; c < stride; ++c) out[c] = 0.0f;
  }
}

__global__ void point_coors_kernel(const float* __restrict__ points, int64_t n, int64_t stride,
                                   VoxelGrid grid, int32_t* __restrict__ out) {
  const int64_t i = thread_index();
  if (i >= n) return;
  int32_t x = -1, y = -1, z = -1;
  if (!point_voxel_cell(points + i * stride, grid, &x, &y, &z)) x = y = z = -1;
  out[3 * i] = z;
  out[3 * i + 1] = y;
  out[3 * i + 2] = x;
}

}  // namespace

int64_t voxelize_workspace_bytes_cuda(int64_t n, int64_t capacity, int device) {
  DeviceGuard guard(device);
  return carve(nullptr, n, capacity).bytes;
}

void voxelize_assign_cuda(const float* points, int64_t n, int64_t point_stride,
                          const VoxelGrid& grid, const int64_t* offsets, int64_t num_clouds,
                          int64_t max_points, int64_t max_voxels, int64_t capacity,
                          void* workspace, int32_t* coors, bool cloud_column,
                          int32_t* num_points, int64_t* stats, int device, uintptr_t stream) {
  if (n <= 0 || capacity <= 0) throw std::runtime_error("voxelize_assign_cuda: needs n >= 1");
  DeviceGuard guard(device);
  const cudaStream_t s = as_stream(stream);
  if (offsets == nullptr) num_clouds = 1;
  const Workspace ws = carve(workspace, n, capacity);
  const int64_t table_size = int64_t{1} << ws.bits;
  const uint32_t sentinel = static_cast<uint32_t>(capacity);

  const unsigned int point_blocks = blocks_for(n), flag_blocks = blocks_for(n + 1);
  constexpr int T = kThreadsPerBlock;

  NT_CUDA_CHECK(cudaMemsetAsync(stats, 0, 2 * sizeof(int64_t), s));
  NT_LAUNCH(init_table_kernel, blocks_for(table_size), T, 0, s, ws.table_keys, ws.table_first,
            table_size);
  NT_CUDA_CHECK_LAUNCH("voxelize (init table)");
  NT_LAUNCH(keys_kernel, point_blocks, T, 0, s, points, n, point_stride, grid, offsets,
            num_clouds, ws.keys, stats);
  NT_CUDA_CHECK_LAUNCH("voxelize (keys)");
  NT_LAUNCH(insert_kernel, point_blocks, T, 0, s, ws.keys, n, ws.bits, ws.table_keys,
            ws.table_first, ws.table_slot);
  NT_CUDA_CHECK_LAUNCH("voxelize (insert)");
  NT_LAUNCH(first_kernel, flag_blocks, T, 0, s, ws.keys, n, ws.table_first, ws.table_slot,
            ws.first);
  NT_CUDA_CHECK_LAUNCH("voxelize (first)");
  size_t temp_bytes = ws.temp_bytes;
  NT_CUDA_CHECK(device::exclusive_sum(ws.temp, temp_bytes, ws.first, ws.rank,
                                      static_cast<int>(n + 1), s));
  NT_LAUNCH(keep_kernel, flag_blocks, T, 0, s, ws.first, ws.rank, n, offsets, num_clouds,
            max_voxels, ws.keep);
  NT_CUDA_CHECK_LAUNCH("voxelize (keep)");
  temp_bytes = ws.temp_bytes;
  NT_CUDA_CHECK(device::exclusive_sum(ws.temp, temp_bytes, ws.keep, ws.number,
                                      static_cast<int>(n + 1), s));
  NT_LAUNCH(number_kernel, point_blocks, T, 0, s, points, n, point_stride, grid, offsets,
            num_clouds, ws.keys, ws.table_first, ws.table_slot, ws.keep, ws.number, sentinel,
            ws.sort_keys_in, ws.sort_values_in, coors, cloud_column);
  NT_CUDA_CHECK_LAUNCH("voxelize (number)");
  temp_bytes = ws.temp_bytes;
  NT_CUDA_CHECK(device::stable_sort_pairs(ws.temp, temp_bytes, ws.sort_keys_in, ws.sort_keys_out,
                                          ws.sort_values_in, ws.order, static_cast<int>(n), 0,
                                          ws.sort_end_bit, s));
  NT_LAUNCH(segments_kernel, point_blocks, T, 0, s, ws.sort_keys_out, n, sentinel, ws.starts,
            num_points);
  NT_CUDA_CHECK_LAUNCH("voxelize (segments)");
  NT_LAUNCH(counts_kernel, blocks_for(capacity), T, 0, s, ws.number, n, capacity, ws.starts,
            max_points, num_points, stats);
  NT_CUDA_CHECK_LAUNCH("voxelize (counts)");
}

void voxelize_fill_cuda(const float* points, int64_t n, int64_t point_stride, int64_t capacity,
                        const void* workspace, int64_t num_voxels, int64_t max_points,
                        const int32_t* num_points, float* voxels, int device,
                        uintptr_t stream) {
  if (num_voxels <= 0) return;
  DeviceGuard guard(device);
  const Workspace ws = carve(const_cast<void*>(workspace), n, capacity);
  NT_LAUNCH(fill_kernel, blocks_for(num_voxels * max_points), kThreadsPerBlock, 0,
            as_stream(stream), points, point_stride, ws.order, ws.starts, num_points, num_voxels,
            max_points, voxels);
  NT_CUDA_CHECK_LAUNCH("voxelize (fill)");
}

void point_voxel_coors_cuda(const float* points, int64_t n, int64_t point_stride,
                            const VoxelGrid& grid, int32_t* out, int device, uintptr_t stream) {
  if (n <= 0) return;
  DeviceGuard guard(device);
  NT_LAUNCH(point_coors_kernel, blocks_for(n), kThreadsPerBlock, 0, as_stream(stream),
            points, n, point_stride, grid, out);
  NT_CUDA_CHECK_LAUNCH("point_voxel_coors");
}

}  // namespace nutrack
