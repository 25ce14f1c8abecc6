// Runtime entry points that belong to no op.
#include "cuda_utils.h"
#include "runtime.h"

namespace nutrack {

void synchronize_cuda(int device) {
  DeviceGuard guard(device);
  NT_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace nutrack
