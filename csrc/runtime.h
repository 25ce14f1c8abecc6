// Runtime entry points that belong to no op.
//
// synchronize_cuda  waits for all work queued on `device`. nutrack/ops never needs it on a real
//                   GPU (reading a result back synchronises the caller's stream); the emulated
//                   backend of the tests calls it after every launcher, because there the
//                   caller's arrays are host memory that Python reads directly.
#pragma once

namespace nutrack {

#ifdef NUTRACK_WITH_CUDA
void synchronize_cuda(int device);
#endif

}  // namespace nutrack
