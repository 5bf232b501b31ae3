// Writers for tests and benches: safetensors files and whole random models of the family
// (config.json + vocab.txt + safetensors), sized by a preset or any ModelConfig-like spec.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace fftools {

struct NamedTensor {
  std::string name;
  ff::Shape shape;
  std::vector<float> values;
};

// Uniform values in [-scale, scale), deterministic per seed (xorshift64): fresh test inputs.
std::vector<float> random_uniform(size_t n, uint64_t seed, float scale = 1.0f);

// Writes `tensors` in order, converting to `dtype` (F32, F16 or BF16).
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, ff::DType dtype);
// Reads a whole safetensors file as fp32 tensors (for fixtures).
std::vector<NamedTensor> read_safetensors(const std::string& path);

struct RandomModelSpec {
  // config.json text; every size of the model comes from here.
  std::string config_json;
  ff::DType dtype = ff::DType::F32;
  bool student = true;
  uint64_t seed = 1;
};

// A tiny model that generates 32x32x5 videos in well under a second.
RandomModelSpec tiny_model_spec();
// The bench's DiT: dim 384, 12 layers, 6 heads; 576 tokens at 192x192x17 (patch 1x2x2).
RandomModelSpec bench_model_spec();
// A DiT whose dit.safetensors is about `bytes` bytes (load measurements).
RandomModelSpec sized_model_spec(uint64_t bytes);

// Writes config.json, vocab.txt, text_encoder/dit/[student]/vae_decoder safetensors into dir
// (created if missing). Weights: uniform with variance suited to each layer's fan-in.
void write_random_model(const std::string& dir, const RandomModelSpec& spec);

// Random parameters for a list of specs (same recipe as write_random_model).
std::vector<NamedTensor> random_params(const std::vector<ff::ParamSpec>& specs, uint64_t seed);

}  // namespace fftools
