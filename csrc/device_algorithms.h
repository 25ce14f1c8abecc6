// The two device-wide algorithms the kernels use, behind one thin interface (CUB's calling
// convention: call once with temp == nullptr to get `temp_bytes`, then again to run):
//
// exclusive_sum     out[i] = in[0] + ... + in[i - 1] (out[0] = 0), n items, int32.
// stable_sort_pairs sorts (keys, values) by bits [begin_bit, end_bit) of the keys, STABLE:
//                   pairs with equal key bits keep their input order. Keys outside the bit
//                   range are not compared (and so they keep their input order).
//
// The real CUDA build maps them onto CUB. The emulated build (NUTRACK_HIP_CPU, see
// gpu_runtime.h) has no CUB (hipCUB sits on CUB or rocPRIM, both GPU-only), so it runs a host
// stand-in with the same semantics, after draining the stream; it asks for and writes its own
// scratch in `temp`, so a workspace too small for what was asked shows up under
// AddressSanitizer. The stand-in tests nutrack's calls (sizes, bit range, buffers), not CUB.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gpu_runtime.h"

#if !defined(NUTRACK_HIP_CPU)
#include <cub/cub.cuh>
#else
#include <algorithm>
#include <cstring>
#include <numeric>
#endif

namespace nutrack {
namespace device {

#if !defined(NUTRACK_HIP_CPU)

inline cudaError_t exclusive_sum(void* temp, size_t& temp_bytes, const int32_t* in, int32_t* out,
                                 int n, cudaStream_t stream = 0) {
  return cub::DeviceScan::ExclusiveSum(temp, temp_bytes, in, out, n, stream);
}

inline cudaError_t stable_sort_pairs(void* temp, size_t& temp_bytes, const uint32_t* keys_in,
                                     uint32_t* keys_out, const int32_t* values_in,
                                     int32_t* values_out, int n, int begin_bit, int end_bit,
                                     cudaStream_t stream = 0) {
  return cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in,
                                         values_out, n, begin_bit, end_bit, stream);
}

#else

// Scratch the stand-in needs: one int32 per item (the scan's running sums, the sort's
// permutation), like the real CUB, which needs temporary storage proportional to n.
inline size_t stand_in_bytes(int n) { return (n > 0 ? static_cast<size_t>(n) : 1) * 4 + 64; }

inline cudaError_t exclusive_sum(void* temp, size_t& temp_bytes, const int32_t* in, int32_t* out,
                                 int n, cudaStream_t stream = 0) {
  if (temp == nullptr) {
    temp_bytes = stand_in_bytes(n);
    return cudaSuccess;
  }
  if (temp_bytes < stand_in_bytes(n) || n < 0) return cudaErrorInvalidValue;
  const cudaError_t drained = cudaStreamSynchronize(stream);
  if (drained != cudaSuccess) return drained;
  int32_t* sums = static_cast<int32_t*>(temp);
  int32_t running = 0;
  for (int i = 0; i < n; ++i) {
    sums[i] = running;
    running += in[i];
  }
  std::memcpy(out, sums, static_cast<size_t>(n) * sizeof(int32_t));
  return cudaSuccess;
}

inline cudaError_t stable_sort_pairs(void* temp, size_t& temp_bytes, const uint32_t* keys_in,
                                     uint32_t* keys_out, const int32_t* values_in,
                                     int32_t* values_out, int n, int begin_bit, int end_bit,
                                     cudaStream_t stream = 0) {
  if (temp == nullptr) {
    temp_bytes = stand_in_bytes(n);
    return cudaSuccess;
  }
  if (temp_bytes < stand_in_bytes(n) || n < 0 || begin_bit < 0 || end_bit > 32 ||
      begin_bit >= end_bit) {
    return cudaErrorInvalidValue;
  }
  const cudaError_t drained = cudaStreamSynchronize(stream);
  if (drained != cudaSuccess) return drained;
  const int width = end_bit - begin_bit;
  const uint32_t mask = width == 32 ? ~0u : ((1u << width) - 1u);
  auto digit = [&](int32_t i) { return (keys_in[i] >> begin_bit) & mask; };
  int32_t* order = static_cast<int32_t*>(temp);
  std::iota(order, order + n, 0);
  std::stable_sort(order, order + n, [&](int32_t a, int32_t b) { return digit(a) < digit(b); });
  for (int i = 0; i < n; ++i) {
    keys_out[i] = keys_in[order[i]];
    values_out[i] = values_in[order[i]];
  }
  return cudaSuccess;
}

#endif

}  // namespace device
}  // namespace nutrack
