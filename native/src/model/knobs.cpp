#include "model/knobs.h"

#include <algorithm>

#include "core/error.h"

namespace ff {

namespace {

[[noreturn]] void bad_request(const std::string& what) { fail(ErrorCode::BadRequest, what); }

template <class E, size_t N>
E parse_enum(const char* knob, const std::string& s, const char* const (&names)[N]) {
  std::string allowed;
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i]) return static_cast<E>(i);
    allowed += (i ? ", " : "") + std::string(names[i]);
  }
  bad_request(std::string(knob) + ": '" + s + "' is not one of " + allowed);
}

const char* const kAttention[] = {"dense", "sage", "sla"};
const char* const kLinear[] = {"fp32", "bf16", "w8a8"};
const char* const kSampler[] = {"euler", "rcm"};
const char* const kWeights[] = {"dit", "student"};

}  // namespace

const char* attention_name(AttentionKind k) { return kAttention[static_cast<int>(k)]; }
const char* linear_name(LinearKind k) { return kLinear[static_cast<int>(k)]; }
const char* sampler_name(SamplerKind k) { return kSampler[static_cast<int>(k)]; }
const char* weights_name(WeightsKind k) { return kWeights[static_cast<int>(k)]; }
AttentionKind parse_attention(const std::string& s) { return parse_enum<AttentionKind>("attention", s, kAttention); }
LinearKind parse_linear(const std::string& s) { return parse_enum<LinearKind>("linear", s, kLinear); }
SamplerKind parse_sampler(const std::string& s) { return parse_enum<SamplerKind>("sampler", s, kSampler); }
WeightsKind parse_weights(const std::string& s) { return parse_enum<WeightsKind>("weights", s, kWeights); }

LatentShape latent_shape(const ModelConfig& c, int width, int height, int frames) {
  LatentShape s;
  s.channels = c.dit.in_channels;
  s.frames = 1 + (frames - 1) / c.vae.temporal_factor();
  s.height = height / 8;
  s.width = width / 8;
  s.grid_t = s.frames / c.dit.patch[0];
  s.grid_h = s.height / c.dit.patch[1];
  s.grid_w = s.width / c.dit.patch[2];
  return s;
}

void resolve_request(const ModelConfig& c, bool has_student, Request& r) {
  const VideoConfig& v = c.video;
  if (r.width == 0) r.width = v.width;
  if (r.height == 0) r.height = v.height;
  if (r.frames == 0) r.frames = v.frames;
  const int multiple_w = std::max(v.spatial_multiple, 8 * c.dit.patch[2]);
  const int multiple_h = std::max(v.spatial_multiple, 8 * c.dit.patch[1]);
  if (r.width < multiple_w || r.width > v.max_width || r.width % multiple_w)
    bad_request("width: " + std::to_string(r.width) + " must be a multiple of " + std::to_string(multiple_w) + " in [" +
                std::to_string(multiple_w) + ", " + std::to_string(v.max_width) + "]");
  if (r.height < multiple_h || r.height > v.max_height || r.height % multiple_h)
    bad_request("height: " + std::to_string(r.height) + " must be a multiple of " + std::to_string(multiple_h) + " in [" +
                std::to_string(multiple_h) + ", " + std::to_string(v.max_height) + "]");
  const int tf = c.vae.temporal_factor();
  // T = 1 + (frames - 1) / tf latent frames, and T must split into whole temporal patches.
  bool frames_ok = r.frames >= 1 && r.frames <= v.max_frames && (r.frames - 1) % tf == 0 && (1 + (r.frames - 1) / tf) % c.dit.patch[0] == 0;
  if (!frames_ok)
    bad_request("frames: " + std::to_string(r.frames) + " must be 1 + " + std::to_string(tf) + "k (latent frames divisible by " +
                std::to_string(c.dit.patch[0]) + "), at most " + std::to_string(v.max_frames));
  Knobs& k = r.knobs;
  if (k.sampler == SamplerKind::Euler) {
    if (k.steps == 0) k.steps = c.sampling.steps;
    if (k.steps < 1 || k.steps > 1000) bad_request("steps: " + std::to_string(k.steps) + " must be in [1, 1000] for sampler euler");
    if (k.guidance_scale < 0) k.guidance_scale = c.sampling.guidance_scale;
    if (!(k.guidance_scale >= 0 && k.guidance_scale <= 100)) bad_request("guidanceScale: must be in [0, 100]");
  } else {
    if (k.steps == 0) k.steps = 4;
    if (k.steps < 1 || k.steps > 4) bad_request("steps: " + std::to_string(k.steps) + " must be in [1, 4] for sampler rcm");
    if (k.guidance_scale < 0) k.guidance_scale = 1.0;
    if (k.guidance_scale != 1.0) bad_request("guidanceScale: sampler rcm runs without CFG; it must be 1");
  }
  if (!(k.sla_top_k > 0 && k.sla_top_k <= 1)) bad_request("slaTopK: must be in (0, 1]");
  if (!(k.tea_cache >= 0 && k.tea_cache <= 10)) bad_request("teaCache: must be 0 (off) or a threshold in (0, 10]");
  if (k.weights == WeightsKind::Student && !has_student) bad_request("weights: 'student' requested but the model has no student.safetensors");
}

}  // namespace ff
