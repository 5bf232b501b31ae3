#include "model/weights.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/threadpool.h"

namespace ff {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

WeightSet::WeightSet(const std::string& path, const std::string& label, const std::vector<ParamSpec>& specs)
    : file_(path), label_(label) {
  auto bad = [&](const std::string& tensor, const std::string& what) {
    fail(ErrorCode::ModelFormat, label_ + ": tensor " + tensor + ": " + what);
  };
  std::map<std::string, const ParamSpec*> by_name;
  for (const ParamSpec& s : specs) by_name[s.name] = &s;
  for (const ParamSpec& s : specs) {
    const TensorInfo* t = file_.find(s.name);
    if (!t) {
      if (!s.optional) bad(s.name, "missing (required by config.json)");
      continue;
    }
    if (t->dtype == DType::I8) bad(s.name, "dtype I8 is not allowed here (use F32, F16 or BF16)");
    if (t->shape != s.shape) bad(s.name, "shape " + shape_str(t->shape) + " does not match config.json, which implies " + shape_str(s.shape));
  }
  for (const TensorInfo& t : file_.tensors()) {
    if (by_name.count(t.name)) continue;
    for (const char* suffix : {".weight_q", ".weight_scale"}) {
      if (!ends_with(t.name, suffix)) continue;
      std::string weight = t.name.substr(0, t.name.size() - std::strlen(suffix)) + ".weight";
      auto it = by_name.find(weight);
      if (it == by_name.end() || !it->second->linear_weight) bad(t.name, std::string("no linear layer ") + weight + " for this " + suffix);
      const Shape& ws = it->second->shape;
      bool q = std::strcmp(suffix, ".weight_q") == 0;
      Shape want = q ? ws : Shape{ws[0]};
      if (t.dtype != (q ? DType::I8 : DType::F32)) bad(t.name, std::string("dtype ") + dtype_name(t.dtype) + ", expected " + (q ? "I8" : "F32"));
      if (t.shape != want) bad(t.name, "shape " + shape_str(t.shape) + ", expected " + shape_str(want));
      goto known;
    }
    bad(t.name, "not a parameter of this model (unexpected tensor)");
  known:;
  }
}

void WeightSet::prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  if (prepared_) return;
  for (const TensorInfo& t : file_.tensors()) {
    if (t.dtype == DType::I8) continue;
    const int64_t n = shape_numel(t.shape);
    const float* view;
    bool aligned = reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0;
    if (t.dtype == DType::F32 && aligned) {
      view = reinterpret_cast<const float*>(t.data);
    } else {
      owned_.push_back(aligned_floats(size_t(n)));
      convert_to_f32(label_, t, owned_.back().get());
      view = owned_.back().get();
    }
    std::atomic<int64_t> first_bad{-1};
    ThreadPool::global().parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        if (!std::isfinite(view[i])) {
          int64_t expected = -1;
          first_bad.compare_exchange_strong(expected, i);
          return;
        }
    }, 1 << 16);
    if (first_bad >= 0) {
      float v = view[first_bad];
      fail(ErrorCode::ModelFormat, label_ + ": tensor " + t.name + ": " + (std::isnan(v) ? "NaN" : "infinite") +
                                       " value at element " + std::to_string(first_bad.load()));
    }
    views_[t.name] = view;
  }
  prepared_ = true;
}

const float* WeightSet::f32(const std::string& name) const {
  auto it = views_.find(name);
  if (it == views_.end()) fail(ErrorCode::Internal, label_ + ": tensor " + name + " is not prepared");
  return it->second;
}

const float* WeightSet::f32_or_null(const std::string& name) const {
  auto it = views_.find(name);
  return it == views_.end() ? nullptr : it->second;
}

}  // namespace ff
