// The interface between the engine (framefleet_core, which never links CUDA) and the CUDA engine
// library framefleet_cuda_engine.so (engine_dit.cu, linked to cudart and cuBLAS). The engine
// dlopen()s the library at model load (native/src/model/backend.cpp), so the Node addon of a CUDA
// build still loads and runs on a machine without the NVIDIA driver or the CUDA libraries: the
// auto backend then falls back to the CPU and names why.
//
// Both sides are compiled by the same compiler in one build, so the interface is plain C++: one
// extern "C" entry point returning a table, an abstract class, and std::exception across the
// boundary (CUDA and cuBLAS failures are std::runtime_error starting with "CUDA: ").
// This header includes no CUDA header.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ff::cuda {

// Bumped whenever anything below changes; the engine refuses a library of another version.
constexpr int kEngineApiVersion = 2;

struct EngineDevice {
  int index = -1;
  char name[256] = {};
  int major = 0, minor = 0;  // compute capability
  uint64_t memoryBytes = 0;
};

// A linear layer as loaded by the CPU engine: fp32 host memory, weight [out, in], bias [out].
struct EngineLinear {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int out = 0, in = 0;
};

// One DiT block's tensors (fp32 host memory; names as in the checkpoint, docs/MODEL.md "DiT").
struct EngineBlock {
  EngineLinear q1, k1, v1, o1, q2, k2, v2, o2, fc1, fc2;
  const float *normQ1 = nullptr, *normK1 = nullptr, *projL = nullptr, *norm3W = nullptr, *norm3B = nullptr;
  const float *normQ2 = nullptr, *normK2 = nullptr;
};

// What the GPU holds of a DiT: patch_embed, the blocks and head.proj. The time and text
// embeddings stay on the CPU (one vector per step, one [L, D] matrix per generation).
struct EngineDitWeights {
  int dim = 0, heads = 0, ffn = 0, layers = 0, channels = 0;
  int patch[3] = {1, 1, 1};
  float eps = 1e-6f;
  double ropeTheta = 10000.0;
  EngineLinear patchEmbed, head;
  const EngineBlock* blocks = nullptr;  // [layers]
};

// Latents [channels, frames, height, width] and their patch grid.
struct EngineLatent {
  int channels = 0, frames = 0, height = 0, width = 0;
  int gridT = 0, gridH = 0, gridW = 0;
  int tokens() const { return gridT * gridH * gridW; }
  int64_t numel() const { return int64_t{channels} * frames * height * width; }
};

enum class EngineAttention { Dense = 0, Sage = 1, Sla = 2 };

// One DiT evaluation. Host pointers; `pass` is the CFG pass (0 conditional, 1 unconditional),
// which selects the text set by setText and the pass's TeaCache state.
struct EngineStep {
  const float* x = nullptr;           // [channels, frames, height, width] latents
  const float* modulation = nullptr;  // [layers, 6, dim]: m(t) + each block's modulation
  const float* headMod = nullptr;     // [2, dim]: head.modulation + e(t) (shift, scale)
  float* v = nullptr;                 // out: [channels, frames, height, width] velocity
  int pass = 0;
  EngineAttention attention = EngineAttention::Dense;
  float slaTopK = 0.1f;
};

// TeaCache's signal for one evaluation, from the GPU: sum |h - h_prev| and sum |h_prev| of block
// 0's modulated input h (bf16 on the device), h_prev being the pass's previous evaluation.
struct EngineTeaSignal {
  bool hasPrevious = false;  // a previous h and a cached residual exist for this pass
  double diff = 0, base = 0;
};

class EngineDit {
 public:
  virtual ~EngineDit() = default;
  // The embedded text of a pass: c = text_embed(ctx) [tokens, dim] fp32 host, padding rows
  // already removed (cross-attention has no key mask; dropping masked keys is the same softmax).
  virtual void setText(int pass, const float* c, int tokens) = 0;
  // Starts a generation: forgets every pass's TeaCache state.
  virtual void beginGeneration() = 0;
  // The whole forward v = DiT(x): blocks, head. Runs as one CUDA graph launch when graphs are on.
  virtual void forward(const EngineLatent& s, const EngineStep& step) = 0;
  // TeaCache, in two calls per evaluation: teaSignal uploads and embeds x and measures h against
  // the pass's previous h (then keeps h); teaFinish either runs the blocks (and caches the
  // residual they added) or adds the cached residual, then runs the head and writes step.v.
  virtual EngineTeaSignal teaSignal(const EngineLatent& s, const EngineStep& step) = 0;
  virtual void teaFinish(const EngineLatent& s, const EngineStep& step, bool runBlocks) = 0;
  // Whether the last forward() ran as a graph launch (false: graphs off or capture failed).
  virtual bool graphed() const = 0;
  virtual uint64_t weightBytes() const = 0;
};

// The causal VAE decoder of docs/MODEL.md (model/vae.cpp) on the GPU. Convolutions as the CPU
// engine's conv3d: stride 1, the time axis padded with kt - 1 zero frames in front, space with
// kh / 2, kw / 2 zeros on each side; fp32 host memory, weight [out, in, kt, kh, kw], bias [out].
struct EngineConv {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int out = 0, in = 0, kt = 1, kh = 1, kw = 1;
};
// y = conv2(silu(norm2(conv1(silu(norm1(x)))))) + skip(x), skip the identity where skip.weight is
// null (in == out); norm: per position over the channels, x / sqrt(mean(x^2) + eps) * w.
struct EngineVaeResBlock {
  const float* norm1 = nullptr;
  EngineConv conv1;
  const float* norm2 = nullptr;
  EngineConv conv2;
  EngineConv skip;
};
// One upsampling stage: res, then (time.weight not null) the 1x1x1 conv to 2c channels whose
// halves become frames 2t and 2t + 1 (frame 0 dropped: 2T - 1 frames), then nearest 2x in space
// and the 1x3x3 space conv.
struct EngineVaeUp {
  EngineVaeResBlock res;
  EngineConv time, space;
};
struct EngineVaeWeights {
  int latentChannels = 0;
  double mean = 0.0, std = 1.0;  // z = latents * std + mean (in double, rounded to float)
  float eps = 1e-6f;
  EngineConv convIn;
  EngineVaeResBlock mid;
  EngineVaeUp up[3];
  const float* normOut = nullptr;
  EngineConv convOut;
};

class EngineVae {
 public:
  virtual ~EngineVae() = default;
  // latents [latentChannels, frames, height, width] (host fp32, before scaling) -> out (host
  // fp32) [convOut.out, outFrames(frames), 8 height, 8 width]: conv_out's output, unclamped.
  virtual void decode(const float* latents, int frames, int height, int width, float* out) = 0;
  virtual int outFrames(int frames) const = 0;
  virtual uint64_t weightBytes() const = 0;
};

struct EngineApi {
  int version = kEngineApiVersion;
  // The device this process would use (the current CUDA device, 0 unless CUDA_VISIBLE_DEVICES
  // says otherwise). Returns false and writes why (one line) when there is none or the library's
  // kernels cannot run on it. Never throws.
  bool (*probe)(EngineDevice* device, char* why, size_t whyBytes) = nullptr;
  // Uploads the weights (bf16 matrices, fp32 vectors; cudaMalloc, no managed memory). Throws
  // std::runtime_error (a message starting "CUDA: " for a failed CUDA call, e.g. out of memory)
  // or std::invalid_argument for a shape the kernels do not run.
  EngineDit* (*createDit)(const EngineDitWeights& weights) = nullptr;
  // Uploads the VAE decoder's weights (fp32); throws as createDit.
  EngineVae* (*createVae)(const EngineVaeWeights& weights) = nullptr;
};

}  // namespace ff::cuda

// The library's one exported symbol.
extern "C" const ff::cuda::EngineApi* framefleet_cuda_engine_api();
