// CUDA helpers: errors become C++ exceptions (pybind11 turns them into RuntimeError), never
// exit(); a device guard restores the caller's device; 64-bit launch arithmetic.
#pragma once

#include "gpu_runtime.h"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace nutrack {

inline void throw_if_cuda_error(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("nutrack CUDA error in ") + what + ": " +
                             cudaGetErrorString(error));
  }
}

#define NT_CUDA_CHECK(expr) ::nutrack::throw_if_cuda_error((expr), #expr)
// After a launch: configuration errors are reported now, not at the next sync.
#define NT_CUDA_CHECK_LAUNCH(name) ::nutrack::throw_if_cuda_error(cudaGetLastError(), name)

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    NT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) NT_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

constexpr int kThreadsPerBlock = 256;

inline unsigned int blocks_for(int64_t work, int threads = kThreadsPerBlock) {
  const int64_t blocks = (work + threads - 1) / threads;
  if (blocks > 2147483647LL) throw std::runtime_error("nutrack: launch too large");
  return static_cast<unsigned int>(blocks);
}

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

}  // namespace nutrack
