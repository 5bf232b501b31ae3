// The DiT blocks and head of docs/MODEL.md on the GPU, composed of the CUDA kernels: bf16
// weights and activations into every GEMM and attention, an fp32 residual stream (bf16 between
// the first block and the head on the fused W8A8 path, FF_CUDA_RESIDUAL). The caller owns
// every buffer (device memory): the tokens after patch_embed, the embedded text c, the per-block
// modulation m + block.modulation, the weights, and one scratch block of ditScratchBytes.
// Cross-attention attends to every text token (no key mask).
// W8A8: the linears named by DitArgs::int8Linears run as int8 x int8 GEMMs on weights quantized
// once per output channel (ditQuantizeWeights) and activations quantized per token where they are
// made (the norm/modulation op, the GELU epilogue, or one quantizeRows), with the bias, RMS norm,
// GELU or gated residual of the bf16 path fused into the dequantization: on the CUTLASS kernel
// with that dequantization in its epilogue where it exists (compute capability 9.x), else cuBLAS's
// int32 product and dequantInt8 (FF_CUDA_INT8_GEMM=cublas forces those; docs/CUDA.md). On the
// fused GEMM the FFN runs in its FP8 form by default (fc1's epilogue writes e4m3, fc2 is an e4m3
// GEMM; FF_CUDA_FFN_FP8=0 keeps fc2 INT8 as on the CPU).
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

// The DiT's linear layers, grouped as ditForward runs them; bit (1u << kind) of
// DitArgs::int8Linears selects W8A8 for that group.
enum class DitLinear { SelfQkv = 0, SelfO, CrossQ, CrossKv, CrossO, Fc1, Fc2, Head, Count };
constexpr unsigned kDitAllLinears = (1u << static_cast<int>(DitLinear::Count)) - 1;

// Stages of the per-op breakdown (DitArgs::stageMs), each summed over the layers. A linear's stage
// holds what the int8 path fuses into it, on either path: its input's quantization when separate,
// the GEMMs and bias, and q/k RMS norm (SelfQkv, CrossQ, CrossKv), GELU (Fc1Gelu) or the gated
// residual (SelfO, CrossO, Fc2). Norm is every layer norm + modulation (with its int8 output).
enum class DitStage { Norm = 0, SelfQkv, Rope, SelfAttention, SelfO, CrossQ, CrossKv, CrossAttention, CrossO, Fc1Gelu, Fc2, Head, Count };
constexpr int kDitStages = static_cast<int>(DitStage::Count);
const char* ditStageName(int stage);

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
  unsigned int8Linears = 0;          // DitLinear bits run as W8A8 (0: every linear bf16)
  const void* int8Weights = nullptr; // ditQuantizeWeights' buffer; needed when int8Linears != 0
  float* stageMs = nullptr;          // host [kDitStages]: when given, ms per DitStage (events; the call then synchronizes)
};

// The scratch; withInt8 adds the int8 activations and the int32 product that W8A8 needs.
size_t ditScratchBytes(const DitShape& s, bool withInt8 = false);
// Per output channel int8 of every block's ten linear weights and the head's: int8 [out, in] and
// fp32 scales [out] each, then every block's fc2 again as e4m3 with its scales (the FFN's FP8
// form, FF_CUDA_FFN_FP8), in one device buffer of ditInt8WeightBytes. blocks and headW as DitArgs.
size_t ditInt8WeightBytes(const DitShape& s);
void ditQuantizeWeights(const DitShape& s, const void* const* blocks, const void* headW, void* buffer, size_t bytes,
                        CUstream_st* stream);
void ditForward(const DitShape& s, const DitArgs& a, void* scratch, size_t scratchBytes, cublasContext* cublas,
                CUstream_st* stream);

}  // namespace ff::cuda
