#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "io/json.h"

namespace ff {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::I8: return 1;
  }
  return 0;
}

namespace {

constexpr int kMaxRank = 8;
constexpr double kMaxDim = double(uint64_t(1) << 40);

[[noreturn]] void bad(const std::string& label, const std::string& what) { fail(ErrorCode::ModelFormat, label + ": " + what); }

uint64_t as_u64(const std::string& label, const std::string& tensor, const JsonValue& v, const char* field) {
  if (!v.is_number()) bad(label, "tensor " + tensor + ": " + field + " must hold non-negative integers");
  double d = v.as_number();
  if (d < 0 || d != std::floor(d) || d > 9.0e15)
    bad(label, "tensor " + tensor + ": " + field + " holds " + std::to_string(d) + ", not a non-negative integer");
  return static_cast<uint64_t>(d);
}

}  // namespace

std::vector<TensorInfo> parse_safetensors(const std::string& label, const uint8_t* bytes, size_t size) {
  if (size < 8) bad(label, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxSafetensorsHeader)
    bad(label, "header length " + std::to_string(header_len) + " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader) + " bytes");
  if (header_len > size - 8)
    bad(label, "header length " + std::to_string(header_len) + " runs past the end of the file (" + std::to_string(size) + " bytes): truncated?");
  const uint8_t* data = bytes + 8 + header_len;
  uint64_t data_size = size - 8 - header_len;

  JsonValue header;
  try {
    header = parse_json(std::string_view(reinterpret_cast<const char*>(bytes + 8), header_len), 8);
  } catch (const std::invalid_argument& e) {
    bad(label, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) bad(label, "header is not a JSON object");

  std::vector<TensorInfo> out;
  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad(label, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.members())
        if (!v.is_string()) bad(label, "__metadata__." + k + " is not a string");
      continue;
    }
    if (name.empty()) bad(label, "a tensor has an empty name");
    if (!entry.is_object()) bad(label, "tensor " + name + ": entry is not an object");
    const JsonValue* dtype = entry.find("dtype");
    const JsonValue* shape = entry.find("shape");
    const JsonValue* offsets = entry.find("data_offsets");
    if (!dtype || !dtype->is_string()) bad(label, "tensor " + name + ": missing dtype");
    if (!shape || !shape->is_array()) bad(label, "tensor " + name + ": missing shape");
    if (!offsets || !offsets->is_array() || offsets->items().size() != 2) bad(label, "tensor " + name + ": data_offsets must be [begin, end]");
    TensorInfo info;
    info.name = name;
    const std::string& dt = dtype->as_string();
    if (dt == "F32") info.dtype = DType::F32;
    else if (dt == "F16") info.dtype = DType::F16;
    else if (dt == "BF16") info.dtype = DType::BF16;
    else if (dt == "I8") info.dtype = DType::I8;
    else bad(label, "tensor " + name + ": unsupported dtype " + dt + " (allowed: F32, F16, BF16, I8)");
    if (shape->items().size() > kMaxRank) bad(label, "tensor " + name + ": rank " + std::to_string(shape->items().size()) + " exceeds " + std::to_string(kMaxRank));
    double numel = 1;
    for (const JsonValue& d : shape->items()) {
      uint64_t dim = as_u64(label, name, d, "shape");
      if (double(dim) > kMaxDim) bad(label, "tensor " + name + ": dimension " + std::to_string(dim) + " is too large");
      info.shape.push_back(static_cast<int64_t>(dim));
      numel *= double(dim);
    }
    uint64_t begin = as_u64(label, name, offsets->items()[0], "data_offsets");
    uint64_t end = as_u64(label, name, offsets->items()[1], "data_offsets");
    if (begin > end) bad(label, "tensor " + name + ": data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end > data_size)
      bad(label, "tensor " + name + ": data ends at byte " + std::to_string(end) + " but the data section has " + std::to_string(data_size) + " bytes (truncated file?)");
    double expected = numel * double(dtype_size(info.dtype));
    if (expected != double(end - begin))
      bad(label, "tensor " + name + ": " + std::to_string(end - begin) + " bytes stored but shape " + shape_str(info.shape) + " of " + dt + " needs " + std::to_string(uint64_t(expected)));
    info.begin = begin;
    info.nbytes = end - begin;
    info.data = data + begin;
    out.push_back(std::move(info));
  }
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : out) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    if (prev->nbytes > 0 && by_offset[i]->nbytes > 0 && prev->begin + prev->nbytes > by_offset[i]->begin)
      bad(label, "tensor " + by_offset[i]->name + ": data overlaps tensor " + prev->name);
  }
  return out;
}

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::ModelFormat, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::ModelFormat, path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorCode::ModelFormat, path + ": cannot map: " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(std::make_unique<MappedFile>(path)) {
  static const uint8_t empty = 0;
  tensors_ = parse_safetensors(path, map_->data() ? map_->data() : &empty, map_->size());
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7FFF + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000;
  uint32_t abs = bits & 0x7FFFFFFF;
  if (abs > 0x7F800000) return uint16_t(sign | 0x7E00);
  if (abs >= 0x477FF000) return uint16_t(sign | 0x7C00);  // overflow to inf
  if (abs < 0x38800000) {                                  // subnormal or zero
    float af;
    std::memcpy(&af, &abs, 4);
    return uint16_t(sign | uint32_t(std::nearbyint(af * 16777216.0f)));
  }
  uint32_t rounded = abs + 0x0FFF + ((abs >> 13) & 1);
  return uint16_t(sign | ((rounded - 0x38000000) >> 13));
}

void convert_to_f32(const std::string& label, const TensorInfo& info, float* out) {
  size_t n = static_cast<size_t>(shape_numel(info.shape));
  switch (info.dtype) {
    case DType::F32: std::memcpy(out, info.data, n * 4); return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, info.data + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, info.data + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case DType::I8: break;
  }
  fail(ErrorCode::ModelFormat, label + ": tensor " + info.name + ": dtype I8 cannot be used as a float tensor");
}

}  // namespace ff
