// The causal 3D VAE decoder (vae_decoder.safetensors): 8x spatial, 2^k temporal upsampling.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "io/config.h"
#include "model/knobs.h"
#include "model/weights.h"

namespace ff {

// The decoder's RMS norms: x / sqrt(mean(x^2) + kVaeEps) * w.
inline constexpr float kVaeEps = 1e-6f;

std::vector<ParamSpec> vae_params(const VaeConfig& c);

class VaeDecoder {
 public:
  // `w` must be prepared.
  VaeDecoder(const WeightSet& w, const VaeConfig& c) : w_(w), c_(c) {}
  // latents: [C, T, h, w] (before scaling) -> [3, F, 8h, 8w], the conv_out output in [-1, 1] range
  // before clamping; F = 1 + tf (T - 1).
  Tensor decode(const float* latents, const LatentShape& s) const;
  // Peak bytes decode() needs for a latent shape (for the memory check before a request runs).
  size_t peak_bytes(const LatentShape& s) const;

 private:
  Tensor res_block(const std::string& name, const Tensor& x, int64_t out_channels) const;
  Tensor conv(const std::string& name, const Tensor& x, int64_t out_channels, int kt, int kh, int kw) const;
  const WeightSet& w_;
  const VaeConfig& c_;
};

// x: [3, F, H, W] -> uint8 RGB [F, H, W, 3] = clamp((x + 1) * 127.5, 0, 255) rounded.
std::vector<uint8_t> to_rgb(const Tensor& x);

}  // namespace ff
