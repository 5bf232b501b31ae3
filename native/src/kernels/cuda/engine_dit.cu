// framefleet_cuda_engine.so: the DiT of a loaded model on the GPU (engine_api.h). The weights are
// uploaded once (bf16 matrices, fp32 vectors and patch_embed, one cudaMalloc); a step copies the
// latents and the conditioning vectors in through pinned staging buffers, runs patchify ->
// patch_embed -> ditForward (blocks, head) -> unpatchify on one stream and copies the velocity
// out. With fixed shapes that whole sequence, copies included, is captured once per (pass,
// shape, attention, topK, text length) as a CUDA graph and replayed with one launch per step;
// FRAMEFLEET_CUDA_GRAPHS=0 or a failed capture runs the same sequence eagerly.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/dit_forward.h"
#include "kernels/cuda/engine_api.h"
#include "kernels/cuda/engine_memory.h"
#include "kernels/cuda/engine_vae.h"
#include "kernels/cuda/engine_ops.h"
#include "kernels/cuda/ops.h"

namespace ff::cuda {

namespace {

constexpr size_t kCublasWorkspaceBytes = 32u << 20;

uint16_t toBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

bool graphsEnabled() {
  const char* e = std::getenv("FRAMEFLEET_CUDA_GRAPHS");
  return !(e && std::strcmp(e, "0") == 0);
}

// What a captured step depends on beyond the buffers' addresses.
using GraphKey = std::tuple<int, int, int, int, int, int, int, int, int, float>;

class CudaDit final : public EngineDit {
 public:
  explicit CudaDit(const EngineDitWeights& w) : w_(w) {
    const int D = w.dim;
    if (w.heads <= 0 || D % w.heads) throw std::invalid_argument("dim " + std::to_string(D) + " is not a multiple of heads");
    const int hd = D / w.heads;
    if (hd != 64 && hd != 128)
      throw std::invalid_argument("head_dim " + std::to_string(hd) + " (the CUDA attention kernels run 64 or 128)");
    if (D % 8 || w.ffn % 8) throw std::invalid_argument("dim and ffn_dim must be multiples of 8 (16-byte rows)");
    FF_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    FF_CUBLAS(cublasCreate(&cublas_));
    FF_CUBLAS(cublasSetStream(cublas_, stream_));
    upload();
    // The host tensors belong to the caller and are not needed again.
    w_.blocks = nullptr;
    w_.patchEmbed = w_.head = EngineLinear{};
  }

  ~CudaDit() override {
    dropGraphs();
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  void setText(int pass, const float* c, int tokens) override {
    checkPass(pass);
    if (tokens < 1) throw std::invalid_argument("setText: no text tokens");
    if (tokens > textCapacity_) {
      textCapacity_ = tokens;
      activeShape_ = {};  // the scratch depends on the text length: reallocate at the next step
    }
    std::vector<uint16_t> bf(static_cast<size_t>(tokens) * w_.dim);
    for (size_t i = 0; i < bf.size(); ++i) bf[i] = toBf16(c[i]);
    text_[pass] = std::move(bf);
    textTokens_[pass] = tokens;
    textDirty_[pass] = true;
  }

  void beginGeneration() override {
    for (PassCache& p : tea_) p.valid = false;
  }

  void forward(const EngineLatent& s, const EngineStep& step) override {
    stage(s, step);
    graphed_ = false;
    if (graphsEnabled() && !graphsBroken_) {
      const GraphKey key{step.pass, s.channels, s.frames, s.height, s.width, s.gridT, s.gridH, textTokens_[step.pass],
                         static_cast<int>(step.attention), step.attention == EngineAttention::Sla ? step.slaTopK : 0.0f};
      auto it = graphs_.find(key);
      if (it == graphs_.end() && warmed_.count(key)) it = capture(key, s, step);
      if (it != graphs_.end()) {
        FF_CUDA(cudaGraphLaunch(it->second, stream_));
        graphed_ = true;
      } else {
        // The first run of a configuration is eager: it sets the kernels' attributes and
        // cuBLAS's heuristics up outside a capture.
        enqueueForward(s, step);
        warmed_.insert({key, true});
      }
    } else {
      enqueueForward(s, step);
    }
    FF_CUDA(cudaStreamSynchronize(stream_));
    std::memcpy(step.v, vHost_.p, sizeof(float) * static_cast<size_t>(s.numel()));
  }

  EngineTeaSignal teaSignal(const EngineLatent& s, const EngineStep& step) override {
    stage(s, step);
    PassCache& p = tea_[step.pass];
    enqueueInputs(s);
    const int64_t nd = int64_t{s.tokens()} * w_.dim;
    layerNormModulate(tok_, h_, s.tokens(), w_.dim, nullptr, nullptr, mod_, mod_ + w_.dim, w_.eps, stream_);
    EngineTeaSignal sig;
    sig.hasPrevious = p.valid;
    if (p.valid) {
      FF_CUDA(cudaMemsetAsync(sums_, 0, 2 * sizeof(double), stream_));
      absDiffSums(h_, p.prevH, nd, sums_, stream_);
      FF_CUDA(cudaMemcpyAsync(sumsHost_.p, sums_, 2 * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    }
    FF_CUDA(cudaMemcpyAsync(p.prevH, h_, nd * 2, cudaMemcpyDeviceToDevice, stream_));
    FF_CUDA(cudaStreamSynchronize(stream_));
    if (p.valid) {
      const double* sums = static_cast<const double*>(sumsHost_.p);
      sig.diff = sums[0];
      sig.base = sums[1];
    }
    p.hasH = true;
    return sig;
  }

  void teaFinish(const EngineLatent& s, const EngineStep& step, bool runBlocks) override {
    PassCache& p = tea_[step.pass];
    if (!p.hasH) throw std::logic_error("teaFinish without teaSignal");
    const int64_t nd = int64_t{s.tokens()} * w_.dim;
    if (runBlocks) {
      FF_CUDA(cudaMemcpyAsync(before_, tok_, nd * 4, cudaMemcpyDeviceToDevice, stream_));
      enqueueDit(s, step, w_.layers);
      subtract(tok_, before_, p.residual, nd, stream_);
      p.valid = true;
    } else {
      if (!p.valid) throw std::logic_error("teaFinish: no cached residual to reuse");
      addInPlace(tok_, p.residual, nd, stream_);
      enqueueDit(s, step, 0);  // the head only
    }
    enqueueOutput(s);
    FF_CUDA(cudaStreamSynchronize(stream_));
    std::memcpy(step.v, vHost_.p, sizeof(float) * static_cast<size_t>(s.numel()));
    p.hasH = false;
  }

  bool graphed() const override { return graphed_; }
  uint64_t weightBytes() const override { return weights_.bytes(); }

 private:
  struct PassCache {
    void* prevH = nullptr;     // bf16 [N, D]: block 0's modulated input at the last evaluation
    float* residual = nullptr; // fp32 [N, D]: what the blocks added at the last full evaluation
    bool valid = false, hasH = false;
  };
  struct Shape {
    int channels = 0, frames = 0, height = 0, width = 0, gridT = 0, gridH = 0, gridW = 0, text = 0;
    bool operator==(const Shape& o) const {
      return std::tie(channels, frames, height, width, gridT, gridH, gridW, text) ==
             std::tie(o.channels, o.frames, o.height, o.width, o.gridT, o.gridH, o.gridW, o.text);
    }
  };

  static void checkPass(int pass) {
    if (pass < 0 || pass > 1) throw std::invalid_argument("pass must be 0 (conditional) or 1 (unconditional)");
  }

  PatchGrid grid(const EngineLatent& s) const {
    return PatchGrid{s.channels, s.frames, s.height, s.width, w_.patch[0], w_.patch[1], w_.patch[2]};
  }

  DitShape ditShape(const EngineLatent& s, int pass, int layers) const {
    DitShape d;
    d.tokens = s.tokens();
    d.dim = w_.dim;
    d.heads = w_.heads;
    d.ffn = w_.ffn;
    d.layers = layers;
    d.ctxTokens = pass < 0 ? textCapacity_ : textTokens_[pass];
    d.patchOut = w_.patch[0] * w_.patch[1] * w_.patch[2] * w_.channels;
    d.frames = s.gridT;
    d.rows = s.gridH;
    d.cols = s.gridW;
    d.eps = w_.eps;
    d.ropeTheta = w_.ropeTheta;
    return d;
  }

  void upload() {
    const int D = w_.dim, F = w_.ffn, hd = D / w_.heads, P = w_.patch[0] * w_.patch[1] * w_.patch[2] * w_.channels;
    if (w_.patchEmbed.out != D || w_.patchEmbed.in != P || w_.head.out != P || w_.head.in != D)
      throw std::invalid_argument("patch_embed / head.proj shapes do not match dim and the patch");
    // Sizes first, then one allocation.
    size_t bytes = 0;
    auto mat = [](const EngineLinear& l) { return DeviceArena::round(size_t{2} * l.out * l.in) + DeviceArena::round(size_t{4} * l.out); };
    auto vec = [](int64_t n) { return DeviceArena::round(size_t{4} * n); };
    bytes += vec(int64_t{D} * P) + vec(D) + mat(w_.head);
    for (int i = 0; i < w_.layers; ++i) {
      const EngineBlock& b = w_.blocks[i];
      for (const EngineLinear* l : {&b.q1, &b.k1, &b.v1, &b.o1, &b.q2, &b.k2, &b.v2, &b.o2, &b.fc1, &b.fc2}) bytes += mat(*l);
      bytes += 6 * vec(D) + (b.projL ? DeviceArena::round(size_t{2} * hd * hd) : 0);
    }
    weights_.allocate(bytes);
    auto upF32 = [&](const float* src, int64_t n) {
      void* d = weights_.take(size_t{4} * n);
      FF_CUDA(cudaMemcpy(d, src, size_t{4} * n, cudaMemcpyHostToDevice));
      return d;
    };
    auto upBf16 = [&](const float* src, int64_t n) {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) h[i] = toBf16(src[i]);
      void* d = weights_.take(size_t{2} * n);
      FF_CUDA(cudaMemcpy(d, h.data(), size_t{2} * n, cudaMemcpyHostToDevice));
      return d;
    };
    auto linear = [&](const EngineLinear& l, int out, int in, const char* what) {
      if (l.out != out || l.in != in || !l.weight || !l.bias) throw std::invalid_argument(std::string(what) + ": unexpected shape");
      blockPtrs_.push_back(upBf16(l.weight, int64_t{out} * in));
      blockPtrs_.push_back(upF32(l.bias, out));
    };
    patchW_ = static_cast<float*>(upF32(w_.patchEmbed.weight, int64_t{D} * P));
    patchB_ = static_cast<float*>(upF32(w_.patchEmbed.bias, D));
    headW_ = upBf16(w_.head.weight, int64_t{P} * D);
    headB_ = static_cast<float*>(upF32(w_.head.bias, P));
    for (int i = 0; i < w_.layers; ++i) {
      const EngineBlock& b = w_.blocks[i];
      // The order of dit_forward.h's kDitBlockPointers: q, k, v, o (weight, bias), norm_q, norm_k.
      auto attention = [&](const std::string& name, const EngineLinear* qkvo, const float* normQ, const float* normK) {
        for (int j = 0; j < 4; ++j) linear(qkvo[j], D, D, (name + "." + "qkvo"[j]).c_str());
        blockPtrs_.push_back(upF32(normQ, D));
        blockPtrs_.push_back(upF32(normK, D));
      };
      const EngineLinear attn1[4] = {b.q1, b.k1, b.v1, b.o1}, attn2[4] = {b.q2, b.k2, b.v2, b.o2};
      attention("attn1", attn1, b.normQ1, b.normK1);
      blockPtrs_.push_back(b.projL ? upBf16(b.projL, int64_t{hd} * hd) : nullptr);
      blockPtrs_.push_back(upF32(b.norm3W, D));
      blockPtrs_.push_back(upF32(b.norm3B, D));
      attention("attn2", attn2, b.normQ2, b.normK2);
      linear(b.fc1, F, D, "ffn.fc1");
      linear(b.fc2, D, F, "ffn.fc2");
    }
    if (blockPtrs_.size() != static_cast<size_t>(w_.layers) * kDitBlockPointers)
      throw std::logic_error("CudaDit: block pointer table out of order");
    cublasWorkspace_.allocate(kCublasWorkspaceBytes);
    FF_CUBLAS(cublasSetWorkspace(cublas_, cublasWorkspace_.take(kCublasWorkspaceBytes), kCublasWorkspaceBytes));
    sumsArena_.allocate(256);
    sums_ = static_cast<double*>(sumsArena_.take(2 * sizeof(double)));
    sumsHost_.reserve(2 * sizeof(double));
  }

  // Buffers for a latent shape (and the longest text seen); reallocated, and every graph dropped,
  // only when the shape changes.
  void reshape(const EngineLatent& s) {
    const Shape want{s.channels, s.frames, s.height, s.width, s.gridT, s.gridH, s.gridW, textCapacity_};
    if (want == activeShape_) return;
    if (s.gridT * w_.patch[0] != s.frames || s.gridH * w_.patch[1] != s.height || s.gridW * w_.patch[2] != s.width ||
        s.channels != w_.channels)
      throw std::invalid_argument("latent shape does not split into the model's patches");
    dropGraphs();
    FF_CUDA(cudaStreamSynchronize(stream_));
    const size_t N = s.tokens(), D = w_.dim, P = static_cast<size_t>(w_.channels) * w_.patch[0] * w_.patch[1] * w_.patch[2];
    const size_t numel = static_cast<size_t>(s.numel()), L = textCapacity_, layers = w_.layers;
    const size_t scratch = ditScratchBytes(ditShape(s, -1, w_.layers));
    const size_t bytes = DeviceArena::round(4 * numel) * 2 + DeviceArena::round(4 * N * P) + DeviceArena::round(4 * N * D) * 4 +
                         DeviceArena::round(2 * N * D) * 3 + DeviceArena::round(2 * N * P) + DeviceArena::round(4 * layers * 6 * D) +
                         DeviceArena::round(4 * 2 * D) + DeviceArena::round(2 * L * D) * 2 + DeviceArena::round(scratch);
    buffers_.allocate(bytes);
    x_ = static_cast<float*>(buffers_.take(4 * numel));
    v_ = static_cast<float*>(buffers_.take(4 * numel));
    patches_ = static_cast<float*>(buffers_.take(4 * N * P));
    tok_ = static_cast<float*>(buffers_.take(4 * N * D));
    before_ = static_cast<float*>(buffers_.take(4 * N * D));
    h_ = buffers_.take(2 * N * D);
    out_ = buffers_.take(2 * N * P);
    mod_ = static_cast<float*>(buffers_.take(4 * layers * 6 * D));
    headMod_ = static_cast<float*>(buffers_.take(4 * 2 * D));
    for (int pass = 0; pass < 2; ++pass) {
      ctx_[pass] = buffers_.take(2 * L * D);
      tea_[pass].prevH = buffers_.take(2 * N * D);
      tea_[pass].residual = static_cast<float*>(buffers_.take(4 * N * D));
      tea_[pass].valid = false;
      textDirty_[pass] = true;
    }
    scratchBytes_ = scratch;
    scratch_ = buffers_.take(scratch);
    xHost_.reserve(4 * numel);
    vHost_.reserve(4 * numel);
    modHost_.reserve(4 * (layers * 6 * D + 2 * D));
    activeShape_ = want;
  }

  // Host inputs into the pinned staging buffers (and the pass's text onto the device when new).
  void stage(const EngineLatent& s, const EngineStep& step) {
    checkPass(step.pass);
    if (textTokens_[step.pass] == 0) throw std::logic_error("no text set for this pass");
    reshape(s);
    if (textDirty_[step.pass]) {
      FF_CUDA(cudaMemcpyAsync(ctx_[step.pass], text_[step.pass].data(), text_[step.pass].size() * 2, cudaMemcpyHostToDevice, stream_));
      FF_CUDA(cudaStreamSynchronize(stream_));
      textDirty_[step.pass] = false;
    }
    const size_t D = w_.dim, modFloats = static_cast<size_t>(w_.layers) * 6 * D;
    std::memcpy(xHost_.p, step.x, sizeof(float) * static_cast<size_t>(s.numel()));
    std::memcpy(modHost_.f32(), step.modulation, sizeof(float) * modFloats);
    std::memcpy(modHost_.f32() + modFloats, step.headMod, sizeof(float) * 2 * D);
  }

  // Staging -> device, patchify, patch_embed (fp32): tok.
  void enqueueInputs(const EngineLatent& s) {
    const size_t D = w_.dim, modFloats = static_cast<size_t>(w_.layers) * 6 * D;
    FF_CUDA(cudaMemcpyAsync(x_, xHost_.p, sizeof(float) * static_cast<size_t>(s.numel()), cudaMemcpyHostToDevice, stream_));
    FF_CUDA(cudaMemcpyAsync(mod_, modHost_.p, sizeof(float) * modFloats, cudaMemcpyHostToDevice, stream_));
    FF_CUDA(cudaMemcpyAsync(headMod_, modHost_.f32() + modFloats, sizeof(float) * 2 * D, cudaMemcpyHostToDevice, stream_));
    const PatchGrid g = grid(s);
    patchify(g, x_, patches_, stream_);
    gemmF32Bias(cublas_, stream_, g.tokens(), w_.dim, g.patchNumel(), patches_, patchW_, patchB_, tok_);
  }

  void enqueueDit(const EngineLatent& s, const EngineStep& step, int layers) {
    DitArgs a;
    a.tok = tok_;
    a.ctx = ctx_[step.pass];
    a.modulation = mod_;
    a.blocks = blockPtrs_.data();
    a.headMod = headMod_;
    a.headW = headW_;
    a.headB = headB_;
    a.out = out_;
    a.attention = static_cast<DitAttention>(static_cast<int>(step.attention));
    a.slaTopK = step.slaTopK;
    ditForward(ditShape(s, step.pass, layers), a, scratch_, scratchBytes_, cublas_, stream_);
  }

  // head output -> velocity -> staging.
  void enqueueOutput(const EngineLatent& s) {
    unpatchify(grid(s), out_, v_, stream_);
    FF_CUDA(cudaMemcpyAsync(vHost_.p, v_, sizeof(float) * static_cast<size_t>(s.numel()), cudaMemcpyDeviceToHost, stream_));
  }

  void enqueueForward(const EngineLatent& s, const EngineStep& step) {
    enqueueInputs(s);
    enqueueDit(s, step, w_.layers);
    enqueueOutput(s);
  }

  std::map<GraphKey, cudaGraphExec_t>::iterator capture(const GraphKey& key, const EngineLatent& s, const EngineStep& step) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    std::string why;
    FF_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
    try {
      enqueueForward(s, step);
    } catch (const std::exception& e) {
      why = e.what();
    }
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (why.empty() && end != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end);
    if (why.empty()) {
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      if (inst != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(inst);
    }
    if (graph) cudaGraphDestroy(graph);
    if (!why.empty()) {
      (void)cudaGetLastError();  // clear the capture's error so later calls start clean
      graphsBroken_ = true;
      std::fprintf(stderr, "framefleet: CUDA graph capture failed, running steps without graphs: %s\n", why.c_str());
      return graphs_.end();
    }
    return graphs_.emplace(key, exec).first;
  }

  void dropGraphs() {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
    warmed_.clear();
  }

  EngineDitWeights w_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceArena weights_, buffers_, cublasWorkspace_, sumsArena_;
  std::vector<const void*> blockPtrs_;
  const float *patchW_ = nullptr, *patchB_ = nullptr, *headB_ = nullptr;
  const void* headW_ = nullptr;
  // Per-shape device buffers (buffers_).
  float *x_ = nullptr, *v_ = nullptr, *patches_ = nullptr, *tok_ = nullptr, *before_ = nullptr, *mod_ = nullptr, *headMod_ = nullptr;
  void *h_ = nullptr, *out_ = nullptr, *scratch_ = nullptr, *ctx_[2] = {nullptr, nullptr};
  size_t scratchBytes_ = 0;
  double* sums_ = nullptr;
  PinnedBuffer xHost_, vHost_, modHost_, sumsHost_;
  std::vector<uint16_t> text_[2];
  int textTokens_[2] = {0, 0}, textCapacity_ = 0;
  bool textDirty_[2] = {true, true};
  PassCache tea_[2];
  Shape activeShape_;
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  std::map<GraphKey, bool> warmed_;
  bool graphsBroken_ = false, graphed_ = false;
};

bool probe(EngineDevice* device, char* why, size_t whyBytes) {
  auto say = [&](const std::string& s) {
    std::snprintf(why, whyBytes, "%s", s.c_str());
    return false;
  };
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return say(std::string("no usable CUDA driver or device (") + cudaGetErrorString(e) + ")");
  if (count == 0) return say("no CUDA device is visible");
  int index = 0;
  if ((e = cudaGetDevice(&index)) != cudaSuccess) return say(std::string("cudaGetDevice: ") + cudaGetErrorString(e));
  cudaDeviceProp prop{};
  if ((e = cudaGetDeviceProperties(&prop, index)) != cudaSuccess)
    return say(std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e));
  device->index = index;
  std::snprintf(device->name, sizeof device->name, "%s", prop.name);
  device->major = prop.major;
  device->minor = prop.minor;
  device->memoryBytes = prop.totalGlobalMem;
  // The library holds code for the architectures it was built for: one tiny launch fails with
  // "no kernel image" when none of them runs on this device.
  float* scratch = nullptr;
  if ((e = cudaMalloc(&scratch, sizeof(float))) != cudaSuccess)
    return say(std::string(prop.name) + ": cannot allocate device memory (" + cudaGetErrorString(e) + ")");
  const PatchGrid one{1, 1, 1, 1, 1, 1, 1};
  try {
    patchify(one, scratch, scratch, nullptr);
    e = cudaDeviceSynchronize();
  } catch (const std::exception& ex) {
    cudaFree(scratch);
    return say(std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
               "): this build's kernels do not run on it (" + ex.what() + ")");
  }
  cudaFree(scratch);
  if (e != cudaSuccess) return say(std::string(prop.name) + ": " + cudaGetErrorString(e));
  return true;
}

EngineDit* createDit(const EngineDitWeights& weights) { return new CudaDit(weights); }

const EngineApi kApi{kEngineApiVersion, &probe, &createDit, &createCudaVae};

}  // namespace

}  // namespace ff::cuda

extern "C" __attribute__((visibility("default"))) const ff::cuda::EngineApi* framefleet_cuda_engine_api() { return &ff::cuda::kApi; }
