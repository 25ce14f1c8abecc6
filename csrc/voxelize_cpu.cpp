// Voxelization on the CPU: parallel loops (threads.h) over the shared cell function in
// include/nutrack/voxel_geometry.h. Deterministic by construction: every step either works
// on disjoint data or walks points in input order.
//
// voxelize_assign
//   1. keys      (parallel over contiguous chunks of points, a few per thread, taken
//                dynamically) each point's key: the linear index of its cell, or -1; and per
//                chunk, how many keys fall in each of B hash buckets (B ~ points / 1024, so a
//                bucket's table fits in L2).
//   2. scatter   (same chunks) a stable partition of the kept points by bucket: (key, point)
//                pairs, bucket after bucket, each bucket in input order.
//   3. local     (parallel over buckets) each bucket walks its points through its own small
//                open-addressing table keyed on the 64-bit cell index (never a dense grid).
//                A new key takes the bucket's next local voxel id; a point takes the next slot
//                of its voxel while it has fewer than max_points. No atomics, no races, and
//                the cache misses of one big table become hits in small ones.
//   4. number    (sequential) walk the points in input order; a voxel's first point (slot 0)
//                gives it the next global number while its cloud has fewer than max_voxels
//                voxels, else the voxel is dropped. So voxels are numbered in order of first
//                appearance whatever the bucketing.
//   5. group     starts = prefix sum of the counts; (parallel) order[starts[v] + slot] = i;
//                coors from each voxel's first point.
// voxelize_fill (parallel over voxels) writes whole rows of the output, zero padded.
//
// The numba twin (nutrack/ops/_numba_voxel.py) is this algorithm with one bucket.
#include <algorithm>
#include <cstring>
#include <vector>

#include "threads.h"
#include "voxelize.h"
#include "workspace.h"

namespace nutrack {
namespace {

// Where a point went (written at random points by pass 3: one 8-byte store, not two).
struct Placement {
  int32_t local;  // its local voxel, or -1 when the point is not placed
  int32_t slot;   // its row in the voxel (0: the voxel's first point), or -1
};

// A local voxel (read at random by pass 4: one line, not two).
struct LocalVoxel {
  int32_t count;  // points placed in it (<= max_points)
  int32_t voxel;  // its global number, or -1 when dropped by max_voxels
};

struct TableEntry {
  int64_t key;    // -1: empty
  int32_t local;  // the key's voxel: an index into its bucket's region of the local arrays
  int32_t unused;
};

// A thread takes at least this many points (or voxels; or floats written, for the fill):
// below, the loop runs on the calling thread, where starting helpers for each of the passes
// costs more than it saves (threads.h): a one-sweep cloud, 34k points, measured 1.42 ms on two
// threads started per pass against 1.15 ms on one.
constexpr int64_t kMinPerThread = 65536;
constexpr int64_t kMinFillPerThread = int64_t{1} << 21;
// Passes 1 and 2 split the points into this many chunks per thread (at most kMaxChunks: each
// holds a count per bucket), taken dynamically: when another process shares a core, the
// thread on the free core takes more chunks instead of waiting for the slow one (issue 12,
// item 1: with 4 chunks a thread, one competing process cost 1.7x; RESULTS.md).
// Chunks, not threads, own the bucket counts, so the result does not depend on which thread
// ran which chunk.
constexpr int64_t kChunksPerThread = 32;
constexpr int64_t kMaxChunks = 256;
// Loops over points or voxels hand out this many iterations at a time.
constexpr int64_t kDynamicChunk = 2048;
constexpr int kMaxBucketBits = 12;
constexpr int64_t kPointsPerBucket = 1024;
constexpr int64_t kAlign = 64;
// How far ahead point rows are prefetched in voxelize_fill; measured best.
constexpr int64_t kPrefetchDistance = 64;

// log2 of the bucket count for n points: about kPointsPerBucket points per bucket.
int bucket_bits_for(int64_t n) {
  int bits = 0;
  while (bits < kMaxBucketBits && (n >> bits) > kPointsPerBucket) ++bits;
  return bits;
}

// Bucket: the top `bucket_bits` bits of the hash; slot in the bucket's 2^table_bits table: the
// next bits. With bucket_bits == 0 the slot is voxel_home_slot, as in the numba twin.
inline uint64_t voxel_hash(int64_t key) { return static_cast<uint64_t>(key) * kVoxelHashMultiplier; }
inline int64_t bucket_of(uint64_t hash, int bucket_bits) {
  return bucket_bits == 0 ? 0 : static_cast<int64_t>(hash >> (64 - bucket_bits));
}
inline uint64_t slot_of(uint64_t hash, int bucket_bits, int table_bits) {
  return (hash << bucket_bits) >> (64 - table_bits);
}

struct Workspace {
  int64_t* keys;            // (n,) pass 1 -> 2
  int64_t* bucket_keys;     // (n,) pass 2 -> 3: the kept keys, bucket after bucket
  int32_t* bucket_points;   // (n,) ... and their point indices
  Placement* placement;     // (n,) pass 1, 3 -> 4, 5
  LocalVoxel* locals;       // (n,) pass 3 -> 4, 5
  int32_t* order;           // (n,) -> voxelize_fill: point indices grouped by voxel
  int32_t* starts;          // (capacity,) -> voxelize_fill: where each voxel's points begin
  int64_t bytes;
};

// Bucket b owns [bucket_start[b], bucket_start[b + 1]) of the local arrays (it cannot have
// more voxels than points). The tables are per thread (small, reused bucket after bucket, so
// they stay in cache) and live outside the workspace.
Workspace carve(void* base, int64_t n, int64_t capacity) {
  Workspace ws{};
  WorkspaceCarver<kAlign> carver(base);
  ws.keys = carver.take<int64_t>(n);
  ws.bucket_keys = carver.take<int64_t>(n);
  ws.bucket_points = carver.take<int32_t>(n);
  ws.placement = carver.take<Placement>(n);
  ws.locals = carver.take<LocalVoxel>(n);
  ws.order = carver.take<int32_t>(n);
  ws.starts = carver.take<int32_t>(capacity);
  ws.bytes = carver.bytes();
  return ws;
}

// Pass 3 for one bucket: local voxel ids and slots for its points, in input order.
void assign_bucket(const Workspace& ws, int64_t begin, int64_t end, TableEntry* table,
                   int bucket_bits, int64_t max_points) {
  const int table_bits = voxel_table_bits(end - begin);
  const uint64_t mask = (uint64_t{1} << table_bits) - 1;
  for (uint64_t s = 0; s <= mask; ++s) table[s].key = -1;
  int32_t next_local = static_cast<int32_t>(begin);
  int64_t last_key = -1;
  int32_t last_local = -1;
  for (int64_t j = begin; j < end; ++j) {
    const int64_t key = ws.bucket_keys[j];
    int32_t local = last_local;
    if (key != last_key) {
      uint64_t s = slot_of(voxel_hash(key), bucket_bits, table_bits);
      while (table[s].key != key && table[s].key != -1) s = (s + 1) & mask;
      if (table[s].key == -1) {  // first appearance
        table[s].key = key;
        table[s].local = next_local;
        ws.locals[next_local].count = 0;
        ++next_local;
      }
      local = table[s].local;
      last_key = key;
      last_local = local;
    }
    int32_t slot = -1;
    if (ws.locals[local].count < max_points) slot = ws.locals[local].count++;
    const int32_t i = ws.bucket_points[j];
    ws.placement[i] = Placement{slot >= 0 ? local : -1, slot};
  }
}

}  // namespace

int64_t voxelize_workspace_bytes_cpu(int64_t n, int64_t capacity) {
  return carve(nullptr, n, capacity).bytes;
}

void voxelize_assign_cpu(const float* points, int64_t n, int64_t point_stride,
                         const VoxelGrid& grid, const int64_t* offsets, int64_t num_clouds,
                         int64_t max_points, int64_t max_voxels, int64_t capacity,
                         void* workspace, int32_t* coors, bool cloud_column,
                         int32_t* num_points, int64_t* stats) {
  const Workspace ws = carve(workspace, n, capacity);
  const int64_t one_cloud[2] = {0, n};
  if (offsets == nullptr) {
    offsets = one_cloud;
    num_clouds = 1;
  }
  // Five passes, five joins: helpers only on idle CPUs (threads.h).
  const int threads = host_threads_on_idle_cpus(n, kMinPerThread);
  const int64_t chunks = threads == 1 ? 1 : std::min(threads * kChunksPerThread, kMaxChunks);
  const int bucket_bits = bucket_bits_for(n);
  const int64_t buckets = int64_t{1} << bucket_bits;

  // 1. Keys and bucket counts per chunk.
  std::vector<int64_t> counts(static_cast<size_t>(chunks) * buckets, 0);  // [chunk][bucket]
  std::vector<int64_t> dropped_in(chunks, 0);
  parallel_chunks(threads, chunks, [&](int64_t c, int) {
    int64_t* mine = counts.data() + c * buckets;
    for (int64_t i = n * c / chunks, end = n * (c + 1) / chunks; i < end; ++i) {
      const int64_t key =
          point_voxel_key(points + i * point_stride, cloud_of(offsets, num_clouds, i), grid);
      ws.keys[i] = key;
      if (key < 0) {  // never placed
        ws.placement[i] = Placement{-1, -1};
        ++dropped_in[c];
      } else {
        ++mine[bucket_of(voxel_hash(key), bucket_bits)];
      }
    }
  });
  int64_t dropped = 0;
  for (const int64_t d : dropped_in) dropped += d;
  // Cursors: bucket by bucket, chunk by chunk within a bucket.
  std::vector<int64_t> bucket_start(buckets + 1, 0);
  int64_t running_points = 0;
  for (int64_t b = 0; b < buckets; ++b) {
    bucket_start[b] = running_points;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t count = counts[c * buckets + b];
      counts[c * buckets + b] = running_points;
      running_points += count;
    }
  }
  bucket_start[buckets] = running_points;
  // 2. The stable scatter by bucket, over the same chunks.
  parallel_chunks(threads, chunks, [&](int64_t c, int) {
    int64_t* mine = counts.data() + c * buckets;
    for (int64_t i = n * c / chunks, end = n * (c + 1) / chunks; i < end; ++i) {
      const int64_t key = ws.keys[i];
      if (key < 0) continue;
      const int64_t at = mine[bucket_of(voxel_hash(key), bucket_bits)]++;
      ws.bucket_keys[at] = key;
      ws.bucket_points[at] = static_cast<int32_t>(i);
    }
  });

  // 3. Local voxels and slots, bucket by bucket; one table per worker, sized for the largest
  // bucket (allocated here, before the workers start).
  int64_t largest = 0;
  for (int64_t b = 0; b < buckets; ++b) {
    const int64_t size = bucket_start[b + 1] - bucket_start[b];
    largest = size > largest ? size : largest;
  }
  std::vector<std::vector<TableEntry>> tables(
      threads, std::vector<TableEntry>(size_t{1} << voxel_table_bits(largest)));
  parallel_ranges(threads, buckets, 4, [&](int64_t begin, int64_t end, int worker) {
    for (int64_t b = begin; b < end; ++b) {
      assign_bucket(ws, bucket_start[b], bucket_start[b + 1], tables[worker].data(), bucket_bits,
                    max_points);
    }
  });

  // 4. Global voxel numbers in first-appearance order, capped per cloud.
  int64_t num_voxels = 0;
  for (int64_t b = 0; b < num_clouds; ++b) {
    int64_t cloud_voxels = 0;
    for (int64_t i = offsets[b]; i < offsets[b + 1]; ++i) {
      if (ws.placement[i].slot != 0) continue;  // not the first point of its voxel
      LocalVoxel& local = ws.locals[ws.placement[i].local];
      if (cloud_voxels < max_voxels) {
        local.voxel = static_cast<int32_t>(num_voxels);
        num_points[num_voxels] = local.count;
        ++num_voxels;
        ++cloud_voxels;
      } else {
        local.voxel = -1;
      }
    }
  }

  // 5. Group the placed points by voxel; each voxel's coordinates from its first point.
  int32_t running = 0;
  for (int64_t v = 0; v < num_voxels; ++v) {
    ws.starts[v] = running;
    running += num_points[v];
  }
  parallel_ranges(threads, n, kDynamicChunk,
                  [&](int64_t begin, int64_t end, int) {
                    for (int64_t i = begin; i < end; ++i) {
                      const Placement place = ws.placement[i];
                      if (place.local < 0) continue;
                      const int32_t voxel = ws.locals[place.local].voxel;
                      if (voxel < 0) continue;
                      ws.order[ws.starts[voxel] + place.slot] = static_cast<int32_t>(i);
                    }
                  });
  const int64_t width = cloud_column ? 4 : 3;
  parallel_ranges(std::min(threads, host_threads(num_voxels, kMinPerThread)), num_voxels,
                  kDynamicChunk,
                  [&](int64_t begin, int64_t end, int) {
                    for (int64_t v = begin; v < end; ++v) {
                      const int64_t first = ws.order[ws.starts[v]];
                      int32_t x = 0, y = 0, z = 0;
                      point_voxel_cell(points + first * point_stride, grid, &x, &y, &z);
                      int32_t* row = coors + v * width;
                      if (cloud_column) {
                        *row++ = static_cast<int32_t>(cloud_of(offsets, num_clouds, first));
                      }
                      row[0] = z;
                      row[1] = y;
                      row[2] = x;
                    }
                  });
  stats[0] = num_voxels;
  stats[1] = dropped;
}

void voxelize_fill_cpu(const float* points, int64_t n, int64_t point_stride, int64_t capacity,
                       const void* workspace, int64_t num_voxels, int64_t max_points,
                       const int32_t* num_points, float* voxels) {
  const Workspace ws = carve(const_cast<void*>(workspace), n, capacity);
  // order[0, placed) lists the points voxel after voxel: prefetch the rows about to be read.
  const int64_t placed =
      num_voxels > 0 ? ws.starts[num_voxels - 1] + num_points[num_voxels - 1] : 0;
  const int threads = host_threads(num_voxels * max_points * point_stride, kMinFillPerThread);
  parallel_ranges(threads, num_voxels, kDynamicChunk / 8, [&](int64_t begin, int64_t end, int) {
    for (int64_t v = begin; v < end; ++v) {
      float* out = voxels + v * max_points * point_stride;
      const int64_t start = ws.starts[v], count = num_points[v];
      for (int64_t s = 0; s < count; ++s) {
        if (start + s + kPrefetchDistance < placed) {
          __builtin_prefetch(points + ws.order[start + s + kPrefetchDistance] * point_stride);
        }
        const float* row = points + ws.order[start + s] * point_stride;
        for (int64_t c = 0; c < point_stride; ++c) out[c] = row[c];
        out += point_stride;
      }
      std::memset(out, 0, (max_points - count) * point_stride * sizeof(float));
    }
  });
}

void point_voxel_coors_cpu(const float* points, int64_t n, int64_t point_stride,
                           const VoxelGrid& grid, int32_t* out) {
  parallel_ranges(host_threads(n, kMinPerThread), n, kDynamicChunk,
                  [&](int64_t begin, int64_t end, int) {
                    for (int64_t i = begin; i < end; ++i) {
                      int32_t x = -1, y = -1, z = -1;
                      if (!point_voxel_cell(points + i * point_stride, grid, &x, &y, &z)) {
                        x = y = z = -1;
                      }
                      out[3 * i] = z;
                      out[3 * i + 1] = y;
                      out[3 * i + 2] = x;
                    }
                  });
}

}  // namespace nutrack
