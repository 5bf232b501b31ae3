#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace ff {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void AlignedFree::operator()(float* p) const { std::free(p); }

AlignedBuffer aligned_floats(size_t count) {
  size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) fail(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes");
  return AlignedBuffer(static_cast<float*>(p));
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), numel_(shape_numel(shape_)) {
  buf_ = aligned_floats(static_cast<size_t>(numel_));
  std::memset(buf_.get(), 0, static_cast<size_t>(numel_) * sizeof(float));
}

Tensor Tensor::uninitialized(Shape shape) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.buf_ = aligned_floats(static_cast<size_t>(t.numel_));
  return t;
}

void Tensor::reshape(Shape shape) {
  if (shape_numel(shape) != numel_) fail(ErrorCode::Internal, "reshape " + shape_str(shape_) + " to " + shape_str(shape));
  shape_ = std::move(shape);
}

Tensor Tensor::clone() const {
  Tensor t(shape_);
  std::memcpy(t.data(), data(), static_cast<size_t>(numel_) * sizeof(float));
  return t;
}

}  // namespace ff
