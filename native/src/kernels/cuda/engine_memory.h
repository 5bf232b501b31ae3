// Device and pinned host memory of the engine library's objects (engine_dit.cu, engine_vae.cu):
// one cudaMalloc carved into 256-byte aligned pieces, and a growable pinned staging buffer.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "kernels/cuda/check.h"

namespace ff::cuda {

// One device allocation carved into 256-byte aligned pieces.
class DeviceArena {
 public:
  DeviceArena() = default;
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  ~DeviceArena() { release(); }
  static size_t round(size_t n) { return (n + 255) / 256 * 256; }
  void allocate(size_t bytes) {
    release();
    if (bytes) FF_CUDA(cudaMalloc(&base_, bytes));
    bytes_ = bytes;
    used_ = 0;
  }
  void* take(size_t n) {
    if (used_ + round(n) > bytes_) throw std::logic_error("DeviceArena: sized too small");
    void* p = static_cast<uint8_t*>(base_) + used_;
    used_ += round(n);
    return p;
  }
  size_t bytes() const { return bytes_; }

 private:
  void release() {
    if (base_) cudaFree(base_);
    base_ = nullptr;
  }
  void* base_ = nullptr;
  size_t bytes_ = 0, used_ = 0;
};

struct PinnedBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { release(); }
  void reserve(size_t n) {
    if (n <= bytes) return;
    release();
    FF_CUDA(cudaMallocHost(&p, n));
    bytes = n;
  }
  void release() {
    if (p) cudaFreeHost(p);
    p = nullptr;
    bytes = 0;
  }
  float* f32() const { return static_cast<float*>(p); }
};

}  // namespace ff::cuda
