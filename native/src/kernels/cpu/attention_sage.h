#pragma once
// Sage-style INT8 attention (attention=sage): per head, K is smoothed by subtracting its mean over
// tokens (exact under softmax), Q and K are quantized to INT8 with one scale per block of 64
// tokens, Q.K^T accumulates in int32 (AMX tdpbssd, AVX-512 VNNI vpdpbusd or scalar), the
// softmax runs online in fp32 with exp2, and P.V runs in bf16 on AMX (fp32 elsewhere).
#include <cstdint>
#include <vector>

#include "quant.h"

namespace ff::cpu {

// q, k, v, o: [tokens, heads * headDim] row-major with the given row strides (in floats); head h
// uses columns [h * headDim, (h + 1) * headDim). Self-attention: q, k and v share tokens.
struct AttentionArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* o = nullptr;
  int64_t tokens = 0, heads = 0, headDim = 0;
  int64_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;
};

constexpr int64_t kSageBlock = 64;     // tokens per quantization block (queries and keys)
constexpr int64_t kSageMaxHeadDim = 256;

// One head's operands, quantized and laid out for a variant.
struct SageHead {
  Variant variant = Variant::Scalar;
  int64_t tokens = 0, headDim = 0, blocks = 0;
  int64_t hdPad = 0;        // headDim rounded up to 64 (int8 depth)
  int64_t hdV = 0;          // headDim rounded up to 16 (output columns)
  float logitScale = 0;     // log2(e) / sqrt(headDim): softmax runs in base 2
  std::vector<float> kMean;     // [headDim] per-channel mean of k over tokens
  std::vector<int8_t> q;        // [blocks*64, hdPad] row-major
  std::vector<float> qScale;    // [blocks]
  std::vector<int8_t> k;        // of k - kMean; Scalar: [blocks*64, hdPad]; else packInt8Panels
  std::vector<float> kScale;    // [blocks]
  std::vector<int32_t> kSum;    // [blocks*64] sum of each int8 key row (vpdpbusd offset)
  std::vector<float> v;         // [blocks*64, hdV] fp32 (Scalar, Vnni)
  std::vector<uint16_t> vBf16;  // Amx: bf16 B tiles, [keys/32][hdV/16][16 key pairs][16][2]
};

// Quantizes and packs head `head` of args for the variant.
void prepareSageHead(const AttentionArgs& args, int64_t head, Variant variant, SageHead& out);

// Attention of query block qb (rows qb*64.., at most 64) over the listed key blocks only:
// out: [rows, headDim] with row stride ldo. Sage attention passes every block; SLA its top-k.
void sageQueryBlock(const SageHead& head, int64_t qb, const int32_t* keyBlocks, int64_t count,
                    float* out, int64_t ldo);
void sageQueryBlockScalar(const SageHead& head, int64_t qb, const int32_t* keyBlocks,
                          int64_t count, float* out, int64_t ldo);
void sageQueryBlockVnni(const SageHead& head, int64_t qb, const int32_t* keyBlocks,
                        int64_t count, float* out, int64_t ldo);
void sageQueryBlockAmx(const SageHead& head, int64_t qb, const int32_t* keyBlocks, int64_t count,
                       float* out, int64_t ldo);

// Whole sage attention on the variant (bestInt8Variant() in the engine), all worker threads.
void sageAttention(const AttentionArgs& args, Variant variant);
// The scalar oracle: the same quantization, exact exp2, fp32 P.V, plain loops.
void sageAttentionReference(const AttentionArgs& args);

// Round-to-nearest-even fp32 -> bf16 bits.
uint16_t toBf16(float x);

}  // namespace ff::cpu
