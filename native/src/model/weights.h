// One safetensors file of a model directory, checked against the parameters the config implies.
// Loading maps the file and checks the header only; prepare() makes every float tensor usable as
// fp32 (aligned F32 stays mapped, F16/BF16 or misaligned F32 are converted once) and rejects
// non-finite values, naming the tensor. Weights are touched first there, not at load.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace ff {

struct ParamSpec {
  std::string name;
  Shape shape;
  bool optional = false;
  bool linear_weight = false;  // may come with <base>.weight_q (I8) + <base>.weight_scale (F32)
};

class WeightSet {
 public:
  // Maps `path` and checks it against `specs`: every required tensor present with its shape and a
  // float dtype, no unknown tensor. `label` (e.g. "dit.safetensors") names the file in errors.
  WeightSet(const std::string& path, const std::string& label, const std::vector<ParamSpec>& specs);

  // Idempotent and thread-safe. Throws Error(ModelFormat) on NaN/Inf weights.
  void prepare();
  bool prepared() const { return prepared_; }
  // fp32 view; throws Error(Internal) before prepare() or for an unknown name.
  const float* f32(const std::string& name) const;
  // Optional tensors: nullptr when absent.
  const float* f32_or_null(const std::string& name) const;
  // Raw entries (I8 pre-quantized weights); nullptr when absent.
  const TensorInfo* info(const std::string& name) const { return file_.find(name); }
  const std::string& label() const { return label_; }
  size_t file_bytes() const { return file_.file_bytes(); }

 private:
  SafetensorsFile file_;
  std::string label_;
  std::mutex mu_;
  bool prepared_ = false;
  std::map<std::string, const float*> views_;
  std::vector<AlignedBuffer> owned_;
};

}  // namespace ff
