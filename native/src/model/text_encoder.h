// The pre-LN transformer text encoder (text_encoder.safetensors).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "io/config.h"
#include "model/weights.h"

namespace ff {

std::vector<ParamSpec> text_encoder_params(const TextConfig& c);

struct TextContext {
  Tensor ctx;                 // [L, Dt]
  std::vector<uint8_t> mask;  // [L], 1 where token != <pad>
};

// ids: [L] -> ctx: [L, Dt]. `w` must be prepared.
TextContext encode_text(const WeightSet& w, const TextConfig& c, const std::vector<int32_t>& ids);

}  // namespace ff
