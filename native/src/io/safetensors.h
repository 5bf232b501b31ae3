// safetensors files mapped read-only. The header is parsed with hard bounds and every entry is
// checked (dtype, shape, offsets inside the data section, size equal to shape x dtype, no overlap)
// before any tensor is exposed; errors name the file, the tensor and the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ff {

enum class DType { F32, F16, BF16, I8 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);

// Largest header accepted: far above any model of the family, small enough to parse safely.
constexpr uint64_t kMaxSafetensorsHeader = uint64_t(64) << 20;

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offset in the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping or buffer
};

// Parses and checks a whole safetensors image in memory. `label` names it in errors. Throws
// Error(ModelFormat).
std::vector<TensorInfo> parse_safetensors(const std::string& label, const uint8_t* bytes, size_t size);

class MappedFile {
 public:
  // Throws Error(ModelFormat) when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  size_t file_bytes() const { return map_->size(); }

 private:
  std::string path_;
  std::unique_ptr<MappedFile> map_;
  std::vector<TensorInfo> tensors_;
};

// Element conversions used when a tensor is not stored as aligned F32.
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);  // round to nearest even
// Converts `info` to fp32 into `out` (numel floats). I8 is rejected.
void convert_to_f32(const std::string& label, const TensorInfo& info, float* out);

}  // namespace ff
