// The DiT blocks and head of docs/MODEL.md on the GPU, composed of the CUDA kernels: bf16
// weights and activations into every GEMM and attention, an fp32 residual stream. The caller owns
// every buffer (device memory): the tokens after patch_embed, the embedded text c, the per-block
// modulation m + block.modulation, the weights, and one scratch block of ditScratchBytes.
// Cross-attention attends to every text token (no key mask).
#pragma once
#include <cstddef>
#include <cstdint>

struct CUstream_st;
struct cublasContext;

namespace ff::cuda {

enum class DitAttention { Flash = 0, Sage = 1, Sla = 2 };

struct DitShape {
  int tokens = 0, dim = 0, heads = 0, ffn = 0, layers = 0, ctxTokens = 0, patchOut = 0;
  int frames = 0, rows = 0, cols = 0;  // token grid, tokens == frames * rows * cols
  float eps = 1e-6f;
  double ropeTheta = 10000.0;
};

// Per block, in this order (bf16 matrices [out, in], fp32 vectors):
// attn1.{q.w, q.b, k.w, k.b, v.w, v.b, o.w, o.b, norm_q.w, norm_k.w, proj_l.w (bf16 [hd, hd] or null)},
// norm3.{w, b}, attn2.{q.w, q.b, k.w, k.b, v.w, v.b, o.w, o.b, norm_q.w, norm_k.w},
// ffn.{fc1.w, fc1.b, fc2.w, fc2.b}
constexpr int kDitBlockPointers = 27;

struct DitArgs {
  float* tok = nullptr;              // [tokens, dim] fp32, in: patch-embedded tokens, out: after the last block
  const void* ctx = nullptr;         // [ctxTokens, dim] bf16: text_embed(ctx)
  const float* modulation = nullptr; // [layers, 6, dim]: m + block.modulation
  const void* const* blocks = nullptr;  // [layers * kDitBlockPointers]
  const float* headMod = nullptr;    // [2, dim]: head.modulation + e (shift, scale)
  const void* headW = nullptr;       // [patchOut, dim] bf16
  const float* headB = nullptr;      // [patchOut]
  void* out = nullptr;               // [tokens, patchOut] bf16
  DitAttention attention = DitAttention::Flash;
  float slaTopK = 0.1f;
};

size_t ditScratchBytes(const DitShape& s);
void ditForward(const DitShape& s, const DitArgs& a, void* scratch, size_t scratchBytes, cublasContext* cublas,
                CUstream_st* stream);

}  // namespace ff::cuda
