// Carves consecutive aligned sub-buffers out of one workspace that the Python side allocates
// with the caller's array library (numpy, torch or cupy), so the kernels never allocate.
// With base == nullptr it only measures: bytes() is then the size to allocate.
#pragma once

#include <cstdint>

namespace nutrack {

template <int64_t Align>
class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(void* base) {
    if (base != nullptr) {
      const auto address = reinterpret_cast<uintptr_t>(base);
      base_ = static_cast<char*>(base) + (Align - address % Align) % Align;
    }
  }

  // The next `count` elements of T, aligned to Align bytes (nullptr when only measuring).
  template <typename T>
  T* take(int64_t count) {
    char* at = base_ == nullptr ? nullptr : base_ + offset_;
    const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
    offset_ += (bytes + Align - 1) / Align * Align;
    return reinterpret_cast<T*>(at);
  }

  // Bytes to allocate for everything taken so far, with room to align the base.
  int64_t bytes() const { return offset_ + Align; }

 private:
  char* base_ = nullptr;
  int64_t offset_ = 0;
};

}  // namespace nutrack
