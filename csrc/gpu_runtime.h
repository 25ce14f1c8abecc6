// The GPU runtime the kernels see, for both builds of csrc/*_cuda.cu:
//
// - nvcc (the real CUDA backend): <cuda_runtime.h>, and NT_LAUNCH is `kernel<<<...>>>(args)`.
// - g++ with NUTRACK_HIP_CPU defined (the emulated backend the tests build from the same
//   sources, tests/cuda_emu.py): HIP-CPU (../shared/third_party/hip-cpu, a test tool, never part
//   of nutrack) runs the kernels on the CPU. The few CUDA runtime names the kernels use map one
//   to one onto HIP-CPU's hip* names here, and NT_LAUNCH is hipLaunchKernelGGL.
//
// Kernel code must not assume HIP-CPU's 64-lane warps: __ballot_sync below returns the 32-lane
// ballot of the CUDA warp the calling thread belongs to (lanes threadIdx.x & ~31 .. | 31 of a
// one-dimensional block), so `threadIdx.x & 31` lane arithmetic means the same in both builds.
#pragma once

#if defined(NUTRACK_HIP_CPU)

// hip/hip_runtime.h less hip_fp16.h: its half-precision header is not in the copy of HIP-CPU
// the tests use (external/half is left out), and no kernel here uses half floats.
#include <version>
#define __HIP_CPU_RT__
#include <hip/hip_api.h>
#include <hip/hip_atomic.h>
#include <hip/hip_defines.h>
#include <hip/hip_device_launch_parameters.h>
#include <hip/hip_enums.h>
#include <hip/hip_math.h>
#include <hip/hip_types.h>
#include <hip/hip_vector_types.h>

#include <cstdint>

using cudaError_t = hipError_t;
using cudaStream_t = hipStream_t;
constexpr hipError_t cudaSuccess = hipSuccess;
constexpr hipError_t cudaErrorInvalidValue = hipErrorInvalidValue;

inline const char* cudaGetErrorString(cudaError_t e) { return hipGetErrorString(e); }
inline cudaError_t cudaGetLastError() { return hipGetLastError(); }
inline cudaError_t cudaGetDevice(int* device) { return hipGetDevice(device); }
inline cudaError_t cudaSetDevice(int device) { return hipSetDevice(device); }
inline cudaError_t cudaDeviceSynchronize() { return hipDeviceSynchronize(); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) { return hipStreamSynchronize(s); }
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  return hipMemsetAsync(p, value, bytes, s);
}

// The ballot of the calling thread's 32-lane CUDA warp, out of HIP-CPU's 64-lane one. Every
// lane of the 64-lane warp must reach it (as for a full-mask __ballot_sync on CUDA).
inline unsigned int __ballot_sync(unsigned int mask, int predicate) {
  const std::uint64_t wide = __ballot(predicate);
  return static_cast<unsigned int>(wide >> (threadIdx.x & 32u)) & mask;
}

#define NT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  hipLaunchKernelGGL(kernel, grid, block, shared_bytes, stream, __VA_ARGS__)

#else

#include <cuda_runtime.h>

#define NT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)

#endif
