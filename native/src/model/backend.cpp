#include "model/backend.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/engine_api.h"
#include "model/dit.h"
#include "model/teacache.h"
#include "model/vae.h"
#include "model/weights.h"

namespace ff {

BackendKind parse_backend(const std::string& value, const std::string& where) {
  if (value == "auto") return BackendKind::Auto;
  if (value == "cpu") return BackendKind::Cpu;
  if (value == "cuda") return BackendKind::Cuda;
  fail(ErrorCode::BadRequest, where + ": '" + value + "' is not one of auto, cpu, cuda");
}

namespace {

const cuda::EngineApi* g_api = nullptr;

#ifdef FF_WITH_CUDA
// framefleet_cuda_engine.so beside the binary that holds this code (the addon or a test), unless
// FRAMEFLEET_CUDA_ENGINE names the file.
std::string engine_library_path() {
  if (const char* env = std::getenv("FRAMEFLEET_CUDA_ENGINE")) return env;
  Dl_info info{};
  std::string dir = ".";
  if (dladdr(reinterpret_cast<void*>(&engine_library_path), &info) && info.dli_fname) {
    dir = info.dli_fname;
    const size_t slash = dir.rfind('/');
    dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  }
  return dir + "/framefleet_cuda_engine.so";
}
#endif

CudaStatus probe_cuda() {
  CudaStatus s;
#ifndef FF_WITH_CUDA
  s.reason = "this engine was built without CUDA (nvcc was not found when native/ was configured)";
  return s;
#else
  s.built = true;
  const std::string path = engine_library_path();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    s.reason = "the CUDA engine library did not load (" + std::string(err ? err : path) + ")";
    return s;
  }
  using Entry = const cuda::EngineApi* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(lib, "framefleet_cuda_engine_api"));
  const cuda::EngineApi* api = entry ? entry() : nullptr;
  if (!api || api->version != cuda::kEngineApiVersion) {
    s.reason = path + " is not this engine's CUDA library (interface version mismatch)";
    dlclose(lib);
    return s;
  }
  cuda::EngineDevice device;
  char why[512] = {};
  if (!api->probe(&device, why, sizeof why)) {
    s.reason = why;
    return s;  // the library stays loaded: cudart may hold state that unloading would break
  }
  s.available = true;
  s.device = device.name;
  s.major = device.major;
  s.minor = device.minor;
  s.memory_bytes = device.memoryBytes;
  g_api = api;
  return s;
#endif
}

// Error(...) for a failure inside the CUDA library: device memory exhaustion is the user's
// to act on (a smaller request or another GPU), anything else is internal.
[[noreturn]] void rethrow_cuda(const std::exception& e, const char* what) {
  const std::string msg = std::string(what) + ": " + e.what();
  if (dynamic_cast<const std::invalid_argument*>(&e)) fail(ErrorCode::BadRequest, msg);
  if (std::strstr(e.what(), "out of memory")) fail(ErrorCode::OutOfMemory, msg);
  fail(ErrorCode::Internal, msg);
}

cuda::EngineLinear engine_linear(const LinearWeights& l) {
  return cuda::EngineLinear{l.weight, l.bias, int(l.out), int(l.in)};
}

}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus status = probe_cuda();
  return status;
}

std::string backend_label(BackendKind kind) {
  if (kind != BackendKind::Cuda) return "cpu";
  const CudaStatus& s = cuda_status();
  return "cuda (" + s.device + ", sm_" + std::to_string(s.major) + std::to_string(s.minor) + ")";
}

GpuDit::GpuDit(const Dit& dit, const ModelConfig& config) : dit_(dit), config_(config) {
  if (!cuda_status().available || !g_api) fail(ErrorCode::Internal, "GpuDit: CUDA is not available: " + cuda_status().reason);
  const DitConfig& c = config.dit;
  std::vector<cuda::EngineBlock> blocks(size_t(c.layers));
  for (int i = 0; i < c.layers; ++i) {
    const DitBlock& b = dit.block_weights(i);
    cuda::EngineBlock& e = blocks[size_t(i)];
    const std::pair<cuda::EngineLinear*, const LinearWeights*> linears[] = {
        {&e.q1, &b.q1}, {&e.k1, &b.k1}, {&e.v1, &b.v1}, {&e.o1, &b.o1},   {&e.q2, &b.q2},
        {&e.k2, &b.k2}, {&e.v2, &b.v2}, {&e.o2, &b.o2}, {&e.fc1, &b.fc1}, {&e.fc2, &b.fc2}};
    for (const auto& [dst, src] : linears) *dst = engine_linear(*src);
    e.normQ1 = b.norm_q1;
    e.normK1 = b.norm_k1;
    e.projL = b.proj_l;
    e.norm3W = b.norm3_w;
    e.norm3B = b.norm3_b;
    e.normQ2 = b.norm_q2;
    e.normK2 = b.norm_k2;
  }
  cuda::EngineDitWeights w;
  w.dim = c.dim;
  w.heads = c.heads;
  w.ffn = c.ffn_dim;
  w.layers = c.layers;
  w.channels = c.in_channels;
  for (int i = 0; i < 3; ++i) w.patch[i] = c.patch[size_t(i)];
  w.eps = float(c.eps);
  w.ropeTheta = c.rope_theta;
  w.patchEmbed = engine_linear(dit.patch_embed_weights());
  w.head = engine_linear(dit.head_weights());
  w.blocks = blocks.data();
  try {
    engine_.reset(g_api->createDit(w));
  } catch (const std::exception& e) {
    rethrow_cuda(e, "cuda: uploading the DiT");
  }
}

GpuDit::~GpuDit() = default;

bool GpuDit::last_step_graphed() const { return engine_->graphed(); }

void GpuDit::begin(const DitText& cond, const DitText* uncond) {
  const int64_t D = config_.dit.dim;
  try {
    for (int pass = 0; pass < 2; ++pass) {
      const DitText* text = pass == 0 ? &cond : uncond;
      if (!text) continue;
      // Cross-attention has no positions on the keys, so attending to the unmasked rows only is
      // the masked softmax of the CPU engine.
      std::vector<float> rows;
      const int64_t L = text->c.dim(0);
      for (int64_t i = 0; i < L; ++i)
        if (text->mask[size_t(i)]) rows.insert(rows.end(), text->c.data() + i * D, text->c.data() + (i + 1) * D);
      if (rows.empty()) fail(ErrorCode::Internal, "cuda: a prompt without any unmasked token");
      engine_->setText(pass, rows.data(), int(rows.size() / size_t(D)));
    }
    engine_->beginGeneration();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_cuda(e, "cuda: setting the text");
  }
}

void GpuDit::forward(const Knobs& knobs, const float* x, const LatentShape& s, double t, bool cond, float* v, TeaCache* cache) {
  const DitConfig& c = config_.dit;
  const int64_t D = c.dim;
  // The step's conditioning on the host: [layers, 6, D] block modulations and the head's shift/scale.
  const DitTime time = dit_.time_embedding(t);
  std::vector<float> modulation(size_t(c.layers) * 6 * size_t(D)), head(2 * size_t(D));
  for (int i = 0; i < c.layers; ++i) {
    const float* own = dit_.block_weights(i).modulation;
    float* dst = modulation.data() + size_t(i) * 6 * size_t(D);
    for (int64_t j = 0; j < 6 * D; ++j) dst[j] = time.m[size_t(j)] + own[j];
  }
  const float* head_mod = dit_.head_modulation();
  for (int64_t j = 0; j < D; ++j) {
    head[size_t(j)] = head_mod[j] + time.e[size_t(j)];
    head[size_t(D + j)] = head_mod[D + j] + time.e[size_t(j)];
  }
  const cuda::EngineLatent latent{int(s.channels), int(s.frames), int(s.height), int(s.width),
                                  int(s.grid_t),     int(s.grid_h), int(s.grid_w)};
  cuda::EngineStep step;
  step.x = x;
  step.modulation = modulation.data();
  step.headMod = head.data();
  step.v = v;
  step.pass = cond ? 0 : 1;
  step.attention = static_cast<cuda::EngineAttention>(static_cast<int>(knobs.attention));
  step.slaTopK = float(knobs.sla_top_k);
  try {
    if (!cache) {
      engine_->forward(latent, step);
      return;
    }
    const cuda::EngineTeaSignal sig = engine_->teaSignal(latent, step);
    const bool run = cache->decide(sig.hasPrevious, [&] { return relative_l1_from_sums(sig.diff, sig.base); });
    engine_->teaFinish(latent, step, run);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_cuda(e, "cuda: denoising step");
  }
}

namespace {

// vae_params' names (model/vae.cpp) as the engine's structures.
cuda::EngineConv engine_conv(const WeightSet& w, const std::string& name, int out, int in, int kt, int kh, int kw) {
  return cuda::EngineConv{w.f32(name + ".weight"), w.f32(name + ".bias"), out, in, kt, kh, kw};
}

cuda::EngineVaeResBlock engine_res_block(const WeightSet& w, const std::string& name, int a, int b) {
  cuda::EngineVaeResBlock r;
  r.norm1 = w.f32(name + ".norm1.weight");
  r.conv1 = engine_conv(w, name + ".conv1", b, a, 3, 3, 3);
  r.norm2 = w.f32(name + ".norm2.weight");
  r.conv2 = engine_conv(w, name + ".conv2", b, b, 3, 3, 3);
  if (a != b) r.skip = engine_conv(w, name + ".skip", b, a, 1, 1, 1);
  return r;
}

}  // namespace

GpuVae::GpuVae(const WeightSet& w, const VaeConfig& c) {
  if (!cuda_status().available || !g_api) fail(ErrorCode::Internal, "GpuVae: CUDA is not available: " + cuda_status().reason);
  const auto& ch = c.channels;
  latent_channels_ = c.latent_channels;
  cuda::EngineVaeWeights e;
  e.latentChannels = c.latent_channels;
  e.mean = c.mean;
  e.std = c.std;
  e.eps = kVaeEps;
  e.convIn = engine_conv(w, "vae.conv_in", ch[0], c.latent_channels, 3, 3, 3);
  e.mid = engine_res_block(w, "vae.mid", ch[0], ch[0]);
  for (int i = 0; i < 3; ++i) {
    const std::string up = "vae.up." + std::to_string(i);
    const int out = ch[size_t(i) + 1];
    e.up[i].res = engine_res_block(w, up + ".res", ch[size_t(i)], out);
    if (c.temporal_upsample[size_t(i)]) e.up[i].time = engine_conv(w, up + ".time", 2 * out, out, 1, 1, 1);
    e.up[i].space = engine_conv(w, up + ".space", out, out, 1, 3, 3);
  }
  e.normOut = w.f32("vae.norm_out.weight");
  e.convOut = engine_conv(w, "vae.conv_out", 3, ch[3], 1, 3, 3);
  try {
    engine_.reset(g_api->createVae(e));
  } catch (const std::exception& ex) {
    rethrow_cuda(ex, "cuda: uploading the VAE decoder");
  }
}

GpuVae::~GpuVae() = default;

Tensor GpuVae::decode(const float* latents, const LatentShape& s) const {
  if (s.channels != latent_channels_)
    fail(ErrorCode::Internal, "cuda: VAE decode of " + std::to_string(s.channels) + "-channel latents, the decoder takes " +
                                  std::to_string(latent_channels_));
  try {
    const int frames = engine_->outFrames(int(s.frames));
    Tensor rgb({3, frames, 8 * s.height, 8 * s.width});
    engine_->decode(latents, int(s.frames), int(s.height), int(s.width), rgb.data());
    return rgb;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_cuda(e, "cuda: VAE decode");
  }
}

}  // namespace ff
