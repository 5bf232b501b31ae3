// The acceleration knobs and the generation request, as plain structs (the binding copies JS
// values into these before work is queued). docs/MODEL.md "profiles" and DESIGN 5.3.
#pragma once
#include <cstdint>
#include <string>

#include "io/config.h"

namespace ff {

enum class AttentionKind { Dense, Sage, Sla };
enum class LinearKind { Fp32, Bf16, W8a8 };
enum class SamplerKind { Euler, Rcm };
enum class WeightsKind { Dit, Student };

struct Knobs {
  AttentionKind attention = AttentionKind::Dense;
  double sla_top_k = 0.1;  // fraction of key blocks attended exactly by sla, (0, 1]
  LinearKind linear = LinearKind::Fp32;
  SamplerKind sampler = SamplerKind::Euler;
  int steps = 0;                // 0: config.json sampling.steps
  double guidance_scale = -1;   // < 0: config.json sampling.guidance_scale
  double tea_cache = 0;         // 0: off; otherwise the accumulated-change threshold
  WeightsKind weights = WeightsKind::Dit;
};

struct Request {
  std::string prompt;
  std::string negative_prompt;  // empty: the empty prompt
  uint64_t seed = 0;
  int width = 0, height = 0, frames = 0;  // 0: config.json video defaults
  Knobs knobs;
};

const char* attention_name(AttentionKind k);
const char* linear_name(LinearKind k);
const char* sampler_name(SamplerKind k);
const char* weights_name(WeightsKind k);
// Parse a knob value; throws Error(BadRequest) naming the knob and the allowed values.
AttentionKind parse_attention(const std::string& s);
LinearKind parse_linear(const std::string& s);
SamplerKind parse_sampler(const std::string& s);
WeightsKind parse_weights(const std::string& s);

// Fills defaults from the config and checks every field against the model (bounds, multiples,
// steps per sampler). Throws Error(BadRequest) with the field name and what is allowed.
void resolve_request(const ModelConfig& config, bool has_student, Request& request);

// Latent grid of a request: [C, T, H/8, W/8] and the patch grid.
struct LatentShape {
  int64_t channels, frames, height, width;
  int64_t grid_t, grid_h, grid_w;
  int64_t tokens() const { return grid_t * grid_h * grid_w; }
  int64_t numel() const { return channels * frames * height * width; }
};
LatentShape latent_shape(const ModelConfig& config, int width, int height, int frames);

}  // namespace ff
