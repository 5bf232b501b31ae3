#include "random_model.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/config.h"
#include "model/dit.h"
#include "model/text_encoder.h"
#include "model/vae.h"

namespace fftools {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::vector<float> random_uniform(size_t n, uint64_t seed, float scale) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = scale * (float((s >> 40) & 0xFFFFFF) / float(1 << 23) - 1.0f);
  }
  return v;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, ff::DType dtype) {
  std::ostringstream header;
  header << "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  const size_t es = ff::dtype_size(dtype);
  for (const NamedTensor& t : tensors) {
    uint64_t bytes = t.values.size() * es;
    header << ",\"" << json_escape(t.name) << "\":{\"dtype\":\"" << ff::dtype_name(dtype) << "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header << (i ? "," : "") << t.shape[i];
    header << "],\"data_offsets\":[" << offset << "," << offset + bytes << "]}";
    offset += bytes;
  }
  header << "}";
  std::string h = header.str();
  while ((8 + h.size()) % 8) h += ' ';  // keep the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) ff::fail(ff::ErrorCode::Internal, "cannot write " + path);
  uint64_t len = h.size();
  unsigned char lenbytes[8];
  for (int i = 0; i < 8; ++i) lenbytes[i] = static_cast<unsigned char>(len >> (8 * i));
  out.write(reinterpret_cast<const char*>(lenbytes), 8);
  out.write(h.data(), std::streamsize(h.size()));
  std::vector<char> buf;
  for (const NamedTensor& t : tensors) {
    buf.resize(t.values.size() * es);
    for (size_t i = 0; i < t.values.size(); ++i) {
      if (dtype == ff::DType::F32) {
        std::memcpy(&buf[i * 4], &t.values[i], 4);
      } else {
        uint16_t v = dtype == ff::DType::F16 ? ff::f32_to_f16(t.values[i]) : ff::f32_to_bf16(t.values[i]);
        std::memcpy(&buf[i * 2], &v, 2);
      }
    }
    out.write(buf.data(), std::streamsize(buf.size()));
  }
  if (!out) ff::fail(ff::ErrorCode::Internal, "cannot write " + path);
}

std::vector<NamedTensor> read_safetensors(const std::string& path) {
  ff::SafetensorsFile f(path);
  std::vector<NamedTensor> out;
  for (const ff::TensorInfo& t : f.tensors()) {
    NamedTensor n{t.name, t.shape, std::vector<float>(size_t(ff::shape_numel(t.shape)))};
    ff::convert_to_f32(path, t, n.values.data());
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<NamedTensor> random_params(const std::vector<ff::ParamSpec>& specs, uint64_t seed) {
  std::vector<NamedTensor> out;
  uint64_t tensor_seed = seed * 1000003;
  for (const ff::ParamSpec& p : specs) {
    NamedTensor t{p.name, p.shape, random_uniform(size_t(ff::shape_numel(p.shape)), ++tensor_seed)};
    const bool norm = p.shape.size() == 1 && (p.name.find("norm") != std::string::npos);
    const bool bias = ends_with(p.name, ".bias");
    const bool embedding = p.name == "text.embed.weight" || p.name == "text.pos.weight";
    const bool modulation = ends_with(p.name, "modulation");
    int64_t fan_in = 1;
    for (size_t i = 1; i < p.shape.size(); ++i) fan_in *= p.shape[i];
    float scale = std::sqrt(3.0f / float(std::max<int64_t>(fan_in, 1)));
    for (float& v : t.values) {
      float u = v;
      if (norm && !bias) v = 1.0f + 0.1f * u;
      else if (bias) v = 0.05f * u;
      else if (embedding) v = u;
      else if (modulation) v = 0.1f * u;
      else v = scale * u;
    }
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

const char* const kWords[] = {"a", "red", "green", "blue", "yellow", "circle", "square", "triangle", "moving", "left",
                              "right", "up", "down", "on", "black", "white", "background", "the", "small", "big"};

std::string tiny_config(int vocab) {
  return R"({"format":"framefleet-dit-v1","name":"random-tiny",
"text":{"vocab_size":)" + std::to_string(vocab) + R"(,"max_tokens":8,"dim":32,"layers":1,"heads":2,"ffn_dim":64},
"dit":{"in_channels":4,"patch_size":[1,2,2],"dim":48,"layers":2,"heads":2,"ffn_dim":96,"freq_dim":32,"rope_theta":10000,"eps":1e-6},
"vae":{"latent_channels":4,"channels":[16,8,8,4],"temporal_upsample":[true,true,false],"scaling":{"mean":0.0,"std":1.0}},
"video":{"width":32,"height":32,"frames":5,"fps":8,"spatial_multiple":16,"max_width":64,"max_height":64,"max_frames":9},
"sampling":{"steps":4,"guidance_scale":3.0,"shift":3.0,"sigma_max":80.0},
"profiles":{"baseline":{"weights":"dit","sampler":"euler","steps":4,"guidanceScale":3.0,"attention":"dense","linear":"fp32","teaCache":0}},
"teacache":{"coefficients":[1.0,0.0]}})";
}

std::string dit_config(int dim, int layers, int heads, int ffn, int width, int height, int frames) {
  return R"({"format":"framefleet-dit-v1","name":"random-bench",
"text":{"vocab_size":22,"max_tokens":16,"dim":128,"layers":2,"heads":4,"ffn_dim":512},
"dit":{"in_channels":8,"patch_size":[1,2,2],"dim":)" + std::to_string(dim) + R"(,"layers":)" + std::to_string(layers) +
         R"(,"heads":)" + std::to_string(heads) + R"(,"ffn_dim":)" + std::to_string(ffn) + R"(,"freq_dim":256,"rope_theta":10000,"eps":1e-6},
"vae":{"latent_channels":8,"channels":[32,16,8,8],"temporal_upsample":[true,true,false],"scaling":{"mean":0.0,"std":1.0}},
"video":{"width":)" + std::to_string(width) + R"(,"height":)" + std::to_string(height) + R"(,"frames":)" + std::to_string(frames) +
         R"(,"fps":16,"spatial_multiple":16,"max_width":512,"max_height":512,"max_frames":129},
"sampling":{"steps":50,"guidance_scale":5.0,"shift":3.0,"sigma_max":80.0}})";
}

}  // namespace

RandomModelSpec tiny_model_spec() { return RandomModelSpec{tiny_config(22), ff::DType::F32, true, 1}; }

RandomModelSpec bench_model_spec() {
  // 192 x 192 x 13 frames -> latent [8, 4, 24, 24] -> 4 x 12 x 12 = 576 tokens of 1x2x2 patches.
  return RandomModelSpec{dit_config(384, 12, 6, 1536, 192, 192, 13), ff::DType::F32, false, 2};
}

RandomModelSpec sized_model_spec(uint64_t bytes) {
  // Per layer ~ (8 D^2 + 2 D F) floats with F = 4D: 16 D^2 floats = 64 D^2 bytes; D = 1024 gives
  // 64 MiB per layer.
  int layers = int(std::max<uint64_t>(1, bytes / (uint64_t(64) << 20)));
  return RandomModelSpec{dit_config(1024, layers, 16, 4096, 128, 128, 5), ff::DType::F32, false, 3};
}

void write_random_model(const std::string& dir, const RandomModelSpec& spec) {
  ::mkdir(dir.c_str(), 0755);
  ff::ModelConfig c = ff::parse_model_config("config.json", spec.config_json);
  std::ofstream(dir + "/config.json") << spec.config_json;
  {
    std::ofstream vocab(dir + "/vocab.txt");
    vocab << "<pad>\n<bos>\n";
    for (int i = 2; i < c.text.vocab_size; ++i) {
      int w = i - 2;
      vocab << (w < int(std::size(kWords)) ? std::string(kWords[w]) : "word" + std::to_string(w)) << "\n";
    }
  }
  write_safetensors(dir + "/text_encoder.safetensors", random_params(ff::text_encoder_params(c.text), spec.seed), spec.dtype);
  write_safetensors(dir + "/dit.safetensors", random_params(ff::dit_params(c.dit, c.text), spec.seed + 1), spec.dtype);
  if (spec.student)
    write_safetensors(dir + "/student.safetensors", random_params(ff::dit_params(c.dit, c.text), spec.seed + 2), spec.dtype);
  write_safetensors(dir + "/vae_decoder.safetensors", random_params(ff::vae_params(c.vae), spec.seed + 3), spec.dtype);
}

}  // namespace fftools
