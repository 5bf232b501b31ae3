// config.json of a model directory (docs/MODEL.md), parsed and range-checked. Errors name the file
// and the key.
#pragma once
#include <array>
#include <string>
#include <vector>

namespace ff {

struct TextConfig {
  int vocab_size = 0, max_tokens = 0, dim = 0, layers = 0, heads = 0, ffn_dim = 0;
};

struct DitConfig {
  int in_channels = 0;
  std::array<int, 3> patch{1, 1, 1};  // pt, ph, pw
  int dim = 0, layers = 0, heads = 0, ffn_dim = 0, freq_dim = 0;
  double rope_theta = 10000, eps = 1e-6;
  int head_dim() const { return dim / heads; }
  int patch_numel() const { return in_channels * patch[0] * patch[1] * patch[2]; }
};

struct VaeConfig {
  int latent_channels = 0;
  std::array<int, 4> channels{};
  std::array<bool, 3> temporal_upsample{};
  double mean = 0, std = 1;
  int temporal_factor() const;  // 2^(number of temporal upsampling stages)
};

struct VideoConfig {
  int width = 0, height = 0, frames = 0, fps = 16, spatial_multiple = 16, max_width = 0, max_height = 0, max_frames = 0;
};

struct SamplingConfig {
  int steps = 50;
  double guidance_scale = 5.0, shift = 3.0, sigma_max = 80.0;
};

struct ModelConfig {
  std::string name;
  TextConfig text;
  DitConfig dit;
  VaeConfig vae;
  VideoConfig video;
  SamplingConfig sampling;
  std::vector<double> teacache_coefficients;
  std::string json;  // the file's text, handed to JavaScript as is
};

// `label` names the file in errors. Throws Error(ModelFormat).
ModelConfig parse_model_config(const std::string& label, const std::string& text);

}  // namespace ff
