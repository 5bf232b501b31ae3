// fp32 tensors: Tensor owns 64-byte aligned storage, TensorView borrows (mapped weights, slices).
// Shapes are row-major, outermost first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace ff {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);

struct AlignedFree {
  void operator()(float* p) const;
};
using AlignedBuffer = std::unique_ptr<float[], AlignedFree>;
// Throws Error(OutOfMemory) when the allocation fails.
AlignedBuffer aligned_floats(size_t count);

struct TensorView {
  const float* data = nullptr;
  Shape shape;
  int64_t numel() const { return shape_numel(shape); }
  int64_t dim(size_t i) const { return shape[i]; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);  // zero-filled
  Tensor(std::initializer_list<int64_t> shape) : Tensor(Shape(shape)) {}
  // Storage left unwritten, for outputs that a kernel then writes in full (the VAE decoder's
  // activations: zeroing tens of megabytes that are overwritten at once cost a pass over memory).
  static Tensor uninitialized(Shape shape);

  float* data() { return buf_.get(); }
  const float* data() const { return buf_.get(); }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  TensorView view() const { return TensorView{buf_.get(), shape_}; }
  // Same storage, new shape of equal size.
  void reshape(Shape shape);
  Tensor clone() const;

 private:
  Shape shape_;
  int64_t numel_ = 0;
  AlignedBuffer buf_;
};

}  // namespace ff
