#include "kernels/cuda/dit_forward.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/env.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/ops.h"

namespace ff::cuda {

namespace {

// Bump allocation in 256-byte steps from base (null base: sizes only).
struct Bump {
  uint8_t* base;
  size_t off = 0;
  void* take(size_t n) {
    void* p = base + off;
    off += (n + 255) / 256 * 256;
    return p;
  }
};

struct Scratch {
  void *h, *q, *k, *v, *o, *y, *f, *k2, *v2, *attn;
  float* rope;  // rope3dTable's cos/sin, built once per forward
  // W8A8 (withInt8): int8 activations of [tokens, dim] (xq), of the GELU output (fq), of the text
  // (cq), their per-token scales, the int32 product of the widest linear, and the bf16 residual
  // stream (tok16, FF_CUDA_RESIDUAL).
  void* tok16 = nullptr;
  int8_t *xq = nullptr, *fq = nullptr, *cq = nullptr;
  float *xs = nullptr, *fs = nullptr, *cs = nullptr;
  int32_t* acc = nullptr;
  size_t attnBytes, bytes;

  Scratch(const DitShape& s, void* base, bool withInt8) {
    const size_t N = s.tokens, D = s.dim, nd = N * D * 2, ld = static_cast<size_t>(s.ctxTokens) * D * 2;
    Bump b{static_cast<uint8_t*>(base)};
    h = b.take(nd);
    // q, k and v in one block: the merged q/k/v GEMM writes it as [N, 3 D] (token stride 3 D).
    const size_t nd256 = (nd + 255) / 256 * 256;
    q = b.take(3 * nd256);
    k = static_cast<uint8_t*>(q) + nd256;
    v = static_cast<uint8_t*>(q) + 2 * nd256;
    o = b.take(nd);
    y = b.take(std::max(nd, N * s.patchOut * 2));
    f = b.take(N * s.ffn * 2);
    k2 = b.take(ld);
    v2 = b.take(ld);
    attnBytes = attentionWorkspaceBytes({s.heads, s.tokens, s.tokens, s.dim / s.heads, 0.0f});
    attn = b.take(attnBytes);
    rope = static_cast<float*>(b.take(rope3dTableBytes(N, s.dim / s.heads)));
    if (withInt8) {
      xq = static_cast<int8_t*>(b.take(N * D));
      fq = static_cast<int8_t*>(b.take(N * s.ffn));
      cq = static_cast<int8_t*>(b.take(static_cast<size_t>(s.ctxTokens) * D));
      xs = static_cast<float*>(b.take(N * 4));
      fs = static_cast<float*>(b.take(N * 4));
      cs = static_cast<float*>(b.take(static_cast<size_t>(s.ctxTokens) * 4));
      const size_t widest = std::max({D, static_cast<size_t>(s.ffn), static_cast<size_t>(s.patchOut)});
      acc = static_cast<int32_t*>(b.take(std::max(N, static_cast<size_t>(s.ctxTokens)) * widest * 4));
      tok16 = b.take(nd);
    }
    bytes = b.off;
  }
};

// The block pointers of the ten linear weights, in the order of ditQuantizeWeights' buffer.
constexpr int kLinearWeights[] = {0, 2, 4, 6, 13, 15, 17, 19, 23, 25};
constexpr int kLinearsPerBlock = 10;

struct QuantWeight {
  int8_t* q;
  float* scale;
  int rows, cols;
};

// ditQuantizeWeights' buffer: per block the ten matrices (kLinearWeights), then the head, then per
// block fc2 again as e4m3 (the FFN's FP8 form, ffnFp8). A block's q, k and v matrices are one
// [3 dim, dim] matrix with [3 dim] scales (the merged q/k/v GEMM), followed by their three biases
// as one fp32 [3 dim] vector (qkvBias, one per block).
std::vector<QuantWeight> int8WeightLayout(const DitShape& s, void* base, size_t* bytes,
                                          std::vector<float*>* qkvBias = nullptr) {
  Bump b{static_cast<uint8_t*>(base)};
  std::vector<QuantWeight> out;
  auto add = [&](int rows, int cols) {
    auto* q = static_cast<int8_t*>(b.take(static_cast<size_t>(rows) * cols));
    out.push_back({q, static_cast<float*>(b.take(static_cast<size_t>(rows) * 4)), rows, cols});
  };
  const size_t D = s.dim;
  for (int l = 0; l < s.layers; ++l) {
    auto* q = static_cast<int8_t*>(b.take(3 * D * D));
    auto* scale = static_cast<float*>(b.take(3 * D * 4));
    for (size_t j = 0; j < 3; ++j) out.push_back({q + j * D * D, scale + j * D, s.dim, s.dim});
    auto* bias = static_cast<float*>(b.take(3 * D * 4));
    if (qkvBias) qkvBias->push_back(bias);
    for (const int p : kLinearWeights)
      if (p > 4) add(p == 23 ? s.ffn : s.dim, p == 25 ? s.ffn : s.dim);
  }
  add(s.patchOut, s.dim);
  for (int l = 0; l < s.layers; ++l) add(s.dim, s.ffn);
  *bytes = b.off;
  return out;
}

// CUDA events between the stages of one forward; finish() sums them into ms per DitStage.
class StageTimer {
 public:
  StageTimer(float* ms, CUstream_st* stream) : ms_(ms), stream_(stream) {}
  ~StageTimer() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

  void begin(DitStage stage) {
    if (!ms_) return;
    record();
    stages_.push_back(static_cast<int>(stage));
  }
  void finish() {
    if (!ms_) return;
    record();
    FF_CUDA(cudaEventSynchronize(events_.back()));
    for (int i = 0; i < kDitStages; ++i) ms_[i] = 0.0f;
    for (size_t i = 0; i < stages_.size(); ++i) {
      float t = 0.0f;
      FF_CUDA(cudaEventElapsedTime(&t, events_[i], events_[i + 1]));
      ms_[stages_[i]] += t;
    }
  }

 private:
  void record() {
    cudaEvent_t e;
    FF_CUDA(cudaEventCreate(&e));
    events_.push_back(e);
    FF_CUDA(cudaEventRecord(e, stream_));
  }
  float* ms_;
  CUstream_st* stream_;
  std::vector<cudaEvent_t> events_;
  std::vector<int> stages_;
};

const float* f32(const void* p) { return static_cast<const float*>(p); }

}  // namespace

const char* ditStageName(int stage) {
  static const char* const names[kDitStages] = {
      "norm + modulation", "self q/k/v (+ bias, q/k RMS norm)", "rope", "self-attention", "self o (+ gated residual)",
      "cross q (+ bias, RMS norm)", "cross k/v of the text", "cross-attention", "cross o (+ residual)",
      "ffn fc1 (+ bias, GELU)", "ffn fc2 (+ gated residual)", "head"};
  return stage >= 0 && stage < kDitStages ? names[stage] : "";
}

namespace {

// FF_CUDA_INT8_GEMM: fused (or unset) = the CUTLASS kernel with the dequantization in its epilogue
// (gemmInt8Dequant, gemmInt8DequantResidual) where the library was built with CUTLASS and the
// device is compute capability 9.x, cuBLAS otherwise; cublas = cuBLAS's int32 product and
// dequantInt8 always (bench/gpu's comparison).
bool int8GemmFused() {
  const std::string v = envChoice("FF_CUDA_INT8_GEMM", {"cublas", "fused"});
#ifdef FF_CUDA_HAVE_CUTLASS
  return v != "cublas" && gemmInt8DequantAvailable();
#else
  return false;
#endif
}

// The FFN's FP8 form (1 or unset, the default): where fc1 and fc2 both run W8A8 on the fused GEMM,
// fc1's epilogue writes gelu(...) as e4m3 and fc2 is an e4m3 GEMM on the e4m3 copy of its weights
// (gemmInt8DequantFp8, gemmFp8DequantResidual) instead of requantizing the bf16 GELU output per
// token to INT8 (measured 6 ms a forward faster at the Wan2.1-1.3B size on an H100, docs/CUDA.md).
// FF_CUDA_FFN_FP8=0: the INT8 fc2, whose numerics are the CPU engine's.
bool ffnFp8Requested() { return envChoice("FF_CUDA_FFN_FP8", {"0", "1"}) != "0"; }

// FF_CUDA_RESIDUAL: bf16 (or unset, the default) keeps the residual stream in bf16 between the
// first block and the head where every residual linear (self o, cross o, fc2) adds into it in a
// fused GEMM epilogue (the W8A8 path on the fused kernel with the FFN's FP8 form): the epilogues
// add in fp32 and round the sum once to bf16, the layer norms read bf16; the stream is converted
// from and back to the caller's fp32 tok around the blocks. This halves the stream's traffic
// (three read-modify-writes and three layer-norm reads a layer), as the PyTorch model run in bf16
// keeps its stream. fp32: the fp32 stream of the CPU engine throughout.
bool residualBf16Requested() { return envChoice("FF_CUDA_RESIDUAL", {"bf16", "fp32"}) != "fp32"; }

// FF_CUDA_QKV=merged: the self-attention's q, k and v as one W8A8 GEMM of [3 dim, dim] where the
// fused GEMM runs; separate (or unset, the default: 2 ms a forward faster on an H100): three GEMMs
// of [dim, dim].
bool qkvMerged() { return envChoice("FF_CUDA_QKV", {"merged", "separate"}) == "merged"; }

// FF_CUDA_CROSS_ATTN=sage: the cross-attention on the Sage kernel (INT8 Q.K^T, e4m3 P.V where the
// card has it) when the self-attention is Sage or SLA; flash (or unset): bf16 flash attention, as
// the CPU engine's dense cross-attention (over 512 text tokens the faster one on an H100).
bool crossSage() { return envChoice("FF_CUDA_CROSS_ATTN", {"flash", "sage"}) == "sage"; }

}  // namespace

size_t ditScratchBytes(const DitShape& s, bool withInt8) { return Scratch(s, nullptr, withInt8).bytes; }

size_t ditInt8WeightBytes(const DitShape& s) {
  size_t bytes = 0;
  int8WeightLayout(s, nullptr, &bytes);
  return bytes;
}

void ditQuantizeWeights(const DitShape& s, const void* const* blocks, const void* headW, void* buffer, size_t bytes,
                        CUstream_st* stream) {
  size_t need = 0;
  std::vector<float*> qkvBias;
  const std::vector<QuantWeight> qw = int8WeightLayout(s, buffer, &need, &qkvBias);
  if (bytes < need) throw std::invalid_argument("ditQuantizeWeights: buffer of " + std::to_string(bytes) + " bytes, need " + std::to_string(need));
  const size_t head = static_cast<size_t>(s.layers) * kLinearsPerBlock;
  for (size_t i = 0; i <= head; ++i) {
    const size_t layer = i / kLinearsPerBlock;
    const void* w = i == head ? headW : blocks[layer * kDitBlockPointers + kLinearWeights[i % kLinearsPerBlock]];
    quantizeRows(w, qw[i].rows, qw[i].cols, qw[i].cols, qw[i].q, qw[i].scale, stream);
  }
  for (size_t l = 0; l < static_cast<size_t>(s.layers); ++l) {
    const QuantWeight& f = qw[head + 1 + l];
    quantizeRowsFp8(blocks[l * kDitBlockPointers + 25], f.rows, f.cols, f.cols, reinterpret_cast<uint8_t*>(f.q), f.scale,
                    stream);
    // q.b, k.b, v.b side by side for the merged q/k/v GEMM (an absent bias is zeros).
    const size_t D = s.dim;
    for (size_t j = 0; j < 3; ++j) {
      const void* bias = blocks[l * kDitBlockPointers + 1 + 2 * j];
      if (bias) FF_CUDA(cudaMemcpyAsync(qkvBias[l] + j * D, bias, D * 4, cudaMemcpyDeviceToDevice, stream));
      else FF_CUDA(cudaMemsetAsync(qkvBias[l] + j * D, 0, D * 4, stream));
    }
  }
}

void ditForward(const DitShape& s, const DitArgs& a, void* scratch, size_t scratchBytes, cublasContext* cublas,
                CUstream_st* stream) {
  const bool anyInt8 = (a.int8Linears & kDitAllLinears) != 0;
  const Scratch w(s, scratch, anyInt8);
  if (scratchBytes < w.bytes) throw std::invalid_argument("ditForward: scratch of " + std::to_string(scratchBytes) + " bytes, need " + std::to_string(w.bytes));
  if (s.frames * s.rows * s.cols != s.tokens) throw std::invalid_argument("ditForward: the grid does not match the token count");
  if (anyInt8 && !a.int8Weights) throw std::invalid_argument("ditForward: int8 linears without ditQuantizeWeights' buffer");
  if (anyInt8 && (s.dim % 4 != 0 || s.ffn % 4 != 0)) throw std::invalid_argument("ditForward: int8 linears need dim and ffn multiples of 4");
  size_t qwBytes = 0;
  std::vector<float*> qkvBias;
  const std::vector<QuantWeight> qw =
      anyInt8 ? int8WeightLayout(s, const_cast<void*>(a.int8Weights), &qwBytes, &qkvBias) : std::vector<QuantWeight>{};
  auto int8 = [&](DitLinear k) { return ((a.int8Linears >> static_cast<int>(k)) & 1u) != 0; };
  const int N = s.tokens, D = s.dim, H = s.heads, hd = D / H, L = s.ctxTokens;
  // Token-major [N, D] holds head h of token n at n * D + h * hd.
  auto tm = [&](void* p) { return AttnTensor{p, hd, D}; };
  const AttnShape self{H, N, N, hd, 0.0f}, cross{H, N, L, hd, 0.0f};
  StageTimer timer(a.stageMs, stream);

  // q = norm_q(x Wq^T + bq), k = norm_k(src Wk^T + bk), v = src Wv^T + bv, with p pointing at one
  // attention's (q.w, q.b, k.w, k.b, v.w, v.b).
  auto qkv = [&](const void* x, const void* src, int nSrc, const void* const* p, const void* normQ, const void* normK,
                 void* q, void* k, void* v, const float* rope) {
    gemmBf16(cublas, stream, N, D, D, x, p[0], q);
    gemmBf16(cublas, stream, nSrc, D, D, src, p[2], k);
    gemmBf16(cublas, stream, nSrc, D, D, src, p[4], v);
    rmsNorm(q, N, D, D, f32(p[1]), f32(normQ), s.eps, stream, rope, hd);
    rmsNorm(k, nSrc, D, D, f32(p[3]), f32(normK), s.eps, stream, rope, hd);
    addBias(v, nSrc, D, f32(p[5]), stream);
  };
  // W8A8 linear: acc = xq . W^T (int32), then the dequantization epilogue e (acc and the scales
  // filled in); with the fused GEMM (int8GemmFused) the GEMM's epilogue writes bf16
  // act(x_scale w_scale acc + bias) instead, and what else e asks follows on that bf16 output.
  const bool fused = int8GemmFused();
  // The FFN's FP8 form where asked and its shapes allow (e4m3 rows of 16 bytes, aligned pointers).
  const bool ffnFp8 = fused && ffnFp8Requested() && int8(DitLinear::Fc1) && int8(DitLinear::Fc2) && s.ffn % 16 == 0 &&
                      D % 16 == 0 && gemmInt8DequantAligned(w.xq, w.fq, w.xs, a.tok, a.int8Weights, nullptr);
  // The bf16 residual stream (residualBf16Requested) where every residual add is a fused epilogue.
  const bool resBf16 = ffnFp8 && int8(DitLinear::SelfO) && int8(DitLinear::CrossO) && residualBf16Requested();
  void* const tok16 = resBf16 ? w.tok16 : nullptr;
  auto linear8 = [&](const QuantWeight& qwt, int rows, const int8_t* xq, const float* xs, DequantArgs e) {
    const int n = qwt.rows, k = qwt.cols;
    void* const res = resBf16 ? tok16 : e.residual;
    if (fused && k % 16 == 0 && e.kind == DequantKind::Residual && n % (resBf16 ? 8 : 4) == 0 &&
        gemmInt8DequantAligned(xq, qwt.q, xs, qwt.scale, e.bias, res, e.gate)) {
      // residual += gate * (the dequantized product), all in the epilogue.
      gemmInt8DequantResidual(rows, n, k, xq, qwt.q, xs, qwt.scale, e.bias, e.gate, res, n, resBf16, stream);
      return;
    }
    // Every other form adds into the fp32 stream.
    if (resBf16 && e.kind == DequantKind::Residual)
      throw std::logic_error("ditForward: the bf16 residual stream without the fused residual epilogue");
    if (fused && k % 16 == 0 && n % 8 == 0) {
      const bool gelu = e.kind == DequantKind::Gelu;
      // The bf16 product: into y for Bf16 / RmsNorm (and Gelu when asked), else into scratch.
      void* out = e.kind == DequantKind::Residual || (gelu && e.y == nullptr) ? (gelu ? w.f : w.y) : e.y;
      const int64_t ld = out == e.y ? e.ldy : n;
      if (ld % 8 == 0 && gemmInt8DequantAligned(xq, qwt.q, xs, qwt.scale, e.bias, out)) {
        gemmInt8Dequant(rows, n, k, xq, qwt.q, xs, qwt.scale, e.bias, gelu, out, ld, stream);
        if (e.kind == DequantKind::RmsNorm) rmsNorm(out, rows, n, ld, nullptr, e.normW, e.eps, stream, e.rope, e.ropeHeadDim);
        if (gelu && e.q) quantizeRows(out, rows, n, ld, e.q, e.qScale, stream);
        if (e.kind == DequantKind::Residual) addGated(e.residual, out, rows, n, nullptr, e.gate, stream);
        return;
      }
    }
    gemmInt8(cublas, stream, rows, qwt.rows, qwt.cols, xq, qwt.q, w.acc);
    e.acc = w.acc;
    e.xScale = xs;
    e.wScale = qwt.scale;
    dequantInt8(e, rows, qwt.rows, stream);
  };
  auto bf16Out = [&](DequantKind kind, const void* bias, void* y, int ldy, const void* normW) {
    DequantArgs e;
    e.kind = kind;
    e.bias = f32(bias);
    e.y = y;
    e.ldy = ldy;
    e.normW = f32(normW);
    e.eps = s.eps;
    return e;
  };
  // tok += gate * (x Wo^T + bo) for an attention output x (bf16 [N, D]).
  auto outProj = [&](DitLinear kind, const QuantWeight* qwt, const void* x, const void* wo, const void* bo, const float* gate) {
    if (int8(kind)) {
      quantizeRows(x, N, D, D, w.xq, w.xs, stream);
      DequantArgs e;
      e.kind = DequantKind::Residual;
      e.bias = f32(bo);
      e.residual = a.tok;
      e.gate = gate;
      linear8(*qwt, N, w.xq, w.xs, e);
    } else {
      gemmBf16(cublas, stream, N, D, D, x, wo, w.y);
      addGated(a.tok, w.y, N, D, f32(bo), gate, stream);
    }
  };
  // h = LN(tok) (affine w, b) (1 + scale) + shift as bf16 when a bf16 linear reads it, as int8 when
  // an int8 one does.
  auto norm = [&](bool toInt8, const float* lw, const float* lb, const float* shift, const float* scale) {
    timer.begin(DitStage::Norm);
    void* const y = toInt8 ? nullptr : w.h;
    int8_t* const q = toInt8 ? w.xq : nullptr;
    if (resBf16) layerNormModulateInt8Bf16(tok16, y, q, w.xs, N, D, lw, lb, shift, scale, s.eps, stream);
    else layerNormModulateInt8(a.tok, y, q, w.xs, N, D, lw, lb, shift, scale, s.eps, stream);
  };

  const bool ropeInNorm = D % 4 == 0 && hd % 4 == 0;
  const bool sageCross = a.attention != DitAttention::Flash && crossSage();
  // The rope stage holds this one build of the cos/sin table too, and the bf16 stream's conversion.
  timer.begin(DitStage::Rope);
  rope3dTable(w.rope, hd, s.frames, s.rows, s.cols, s.ropeTheta, stream);
  if (resBf16) f32ToBf16(a.tok, tok16, static_cast<int64_t>(N) * D, stream);
  if (int8(DitLinear::CrossKv)) {
    timer.begin(DitStage::CrossKv);
    quantizeRows(a.ctx, L, D, D, w.cq, w.cs, stream);  // the same text for every block
  }
  for (int layer = 0; layer < s.layers; ++layer) {
    const void* const* b = a.blocks + static_cast<size_t>(layer) * kDitBlockPointers;
    const QuantWeight* lq = anyInt8 ? &qw[static_cast<size_t>(layer) * kLinearsPerBlock] : nullptr;
    const float* m = a.modulation + static_cast<size_t>(layer) * 6 * D;  // s1, sc1, g1, s2, sc2, g2
    // Self-attention: h = LN(tok) (1 + sc1) + s1; q, k RMS-normed and rotated; tok += g1 * o(attn).
    norm(int8(DitLinear::SelfQkv), nullptr, nullptr, m, m + D);
    timer.begin(DitStage::SelfQkv);
    // q and k are rotated by the RMS norm's store where the layout allows (every real shape), else
    // by rope3dApply afterwards.
    const float* normRope = ropeInNorm ? w.rope : nullptr;
    // The merged q/k/v GEMM writes [N, 3 D]: q, k and v are its column thirds (token stride 3 D).
    const bool merged = fused && int8(DitLinear::SelfQkv) && qkvMerged() && D % 8 == 0 &&
                        gemmInt8DequantAligned(w.xq, lq[0].q, w.xs, lq[0].scale, qkvBias[layer], w.q);
    const int64_t qkvLd = merged ? 3 * D : D;
    void* const selfK = merged ? static_cast<void*>(static_cast<uint16_t*>(w.q) + D) : w.k;
    void* const selfV = merged ? static_cast<void*>(static_cast<uint16_t*>(w.q) + 2 * D) : w.v;
    if (merged) {
      gemmInt8Dequant(N, 3 * D, D, w.xq, lq[0].q, w.xs, lq[0].scale, qkvBias[layer], false, w.q, qkvLd, stream);
      rmsNorm(w.q, N, D, qkvLd, nullptr, f32(b[8]), s.eps, stream, normRope, hd);
      rmsNorm(selfK, N, D, qkvLd, nullptr, f32(b[9]), s.eps, stream, normRope, hd);
    } else if (int8(DitLinear::SelfQkv)) {
      DequantArgs eq = bf16Out(DequantKind::RmsNorm, b[1], w.q, D, b[8]), ek = bf16Out(DequantKind::RmsNorm, b[3], w.k, D, b[9]);
      eq.rope = ek.rope = normRope;
      eq.ropeHeadDim = ek.ropeHeadDim = hd;
      linear8(lq[0], N, w.xq, w.xs, eq);
      linear8(lq[1], N, w.xq, w.xs, ek);
      linear8(lq[2], N, w.xq, w.xs, bf16Out(DequantKind::Bf16, b[5], w.v, D, nullptr));
    } else {
      qkv(w.h, w.h, N, b, b[8], b[9], w.q, w.k, w.v, normRope);
    }
    if (!ropeInNorm) {
      timer.begin(DitStage::Rope);
      rope3dApply(w.q, selfK, qkvLd, N, H, hd, w.rope, stream);
    }
    timer.begin(DitStage::SelfAttention);
    const AttnTensor sq{w.q, hd, qkvLd}, sk{selfK, hd, qkvLd}, sv{selfV, hd, qkvLd};
    if (a.attention == DitAttention::Flash) {
      flashAttention(self, sq, sk, sv, tm(w.o), stream);
    } else if (a.attention == DitAttention::Sage) {
      sageAttention(self, sq, sk, sv, tm(w.o), w.attn, w.attnBytes, stream);
    } else {
      SlaOptions o;
      o.topK = a.slaTopK;
      o.projL = b[10];
      slaAttention(self, sq, sk, sv, tm(w.o), o, w.attn, w.attnBytes, cublas, stream);
    }
    timer.begin(DitStage::SelfO);
    outProj(DitLinear::SelfO, lq ? &lq[3] : nullptr, w.o, b[6], b[7], m + 2 * D);

    // Cross-attention over the text: tok += o2(attn(norm_q(q2(norm3(tok))), norm_k(k2(c)), v2(c))).
    norm(int8(DitLinear::CrossQ), f32(b[11]), f32(b[12]), nullptr, nullptr);
    timer.begin(DitStage::CrossQ);
    if (int8(DitLinear::CrossQ)) {
      linear8(lq[4], N, w.xq, w.xs, bf16Out(DequantKind::RmsNorm, b[14], w.q, D, b[21]));
    } else {
      gemmBf16(cublas, stream, N, D, D, w.h, b[13], w.q);
      rmsNorm(w.q, N, D, D, f32(b[14]), f32(b[21]), s.eps, stream);
    }
    timer.begin(DitStage::CrossKv);
    if (int8(DitLinear::CrossKv)) {
      linear8(lq[5], L, w.cq, w.cs, bf16Out(DequantKind::RmsNorm, b[16], w.k2, D, b[22]));
      linear8(lq[6], L, w.cq, w.cs, bf16Out(DequantKind::Bf16, b[18], w.v2, D, nullptr));
    } else {
      gemmBf16(cublas, stream, L, D, D, a.ctx, b[15], w.k2);
      gemmBf16(cublas, stream, L, D, D, a.ctx, b[17], w.v2);
      rmsNorm(w.k2, L, D, D, f32(b[16]), f32(b[22]), s.eps, stream);
      addBias(w.v2, L, D, f32(b[18]), stream);
    }
    timer.begin(DitStage::CrossAttention);
    if (sageCross) sageAttention(cross, tm(w.q), tm(w.k2), tm(w.v2), tm(w.o), w.attn, w.attnBytes, stream);
    else flashAttention(cross, tm(w.q), tm(w.k2), tm(w.v2), tm(w.o), stream);
    timer.begin(DitStage::CrossO);
    outProj(DitLinear::CrossO, lq ? &lq[7] : nullptr, w.o, b[19], b[20], nullptr);

    // FFN: h = LN(tok) (1 + sc2) + s2; tok += g2 * fc2(gelu(fc1(h))).
    const bool fc2Int8 = int8(DitLinear::Fc2);
    norm(int8(DitLinear::Fc1), nullptr, nullptr, m + 3 * D, m + 4 * D);
    timer.begin(DitStage::Fc1Gelu);
    const bool fp8 = ffnFp8 && gemmInt8DequantAligned(b[24], b[26], m + 5 * D, nullptr, nullptr, nullptr);
    if (fp8) {
      // gelu(fc1(h)) as e4m3 straight from the epilogue, fc2 on it with the e4m3 weights.
      gemmInt8DequantFp8(N, s.ffn, D, w.xq, lq[8].q, w.xs, lq[8].scale, f32(b[24]), w.fq, s.ffn, stream);
      timer.begin(DitStage::Fc2);
      const QuantWeight& f = qw[static_cast<size_t>(s.layers) * kLinearsPerBlock + 1 + layer];
      gemmFp8DequantResidual(N, D, s.ffn, w.fq, f.q, 1.0f, f.scale, f32(b[26]), m + 5 * D, resBf16 ? tok16 : a.tok, D,
                             resBf16, stream);
    } else if (int8(DitLinear::Fc1)) {
      // gelu(fc1(h)) as bf16 for a bf16 fc2, as int8 straight from the epilogue for an int8 one.
      DequantArgs e = bf16Out(DequantKind::Gelu, b[24], fc2Int8 ? nullptr : w.f, s.ffn, nullptr);
      e.q = fc2Int8 ? w.fq : nullptr;
      e.qScale = w.fs;
      linear8(lq[8], N, w.xq, w.xs, e);
    } else {
      gemmBf16(cublas, stream, N, s.ffn, D, w.h, b[23], w.f);
      biasGelu(w.f, N, s.ffn, f32(b[24]), stream);
      if (fc2Int8) quantizeRows(w.f, N, s.ffn, s.ffn, w.fq, w.fs, stream);
    }
    if (fp8) continue;
    timer.begin(DitStage::Fc2);
    if (fc2Int8) {
      DequantArgs e;
      e.kind = DequantKind::Residual;
      e.bias = f32(b[26]);
      e.residual = a.tok;
      e.gate = m + 5 * D;
      linear8(lq[9], N, w.fq, w.fs, e);
    } else {
      gemmBf16(cublas, stream, N, D, s.ffn, w.f, b[25], w.y);
      addGated(a.tok, w.y, N, D, f32(b[26]), m + 5 * D, stream);
    }
  }
  norm(int8(DitLinear::Head), nullptr, nullptr, a.headMod, a.headMod + D);
  timer.begin(DitStage::Head);
  if (resBf16) bf16ToF32(tok16, a.tok, static_cast<int64_t>(N) * D, stream);  // tok after the last block
  if (int8(DitLinear::Head)) {
    linear8(qw[static_cast<size_t>(s.layers) * kLinearsPerBlock], N, w.xq, w.xs, bf16Out(DequantKind::Bf16, a.headB, a.out, s.patchOut, nullptr));
  } else {
    gemmBf16(cublas, stream, N, s.patchOut, D, w.h, a.headW, a.out);
    addBias(a.out, N, s.patchOut, a.headB, stream);
  }
  timer.finish();
}

}  // namespace ff::cuda
