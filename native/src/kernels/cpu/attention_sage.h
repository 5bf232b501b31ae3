#pragma once
// Sage-style INT8 attention (attention=sage): per head, K is smoothed by subtracting its mean over
// tokens (exact under softmax), Q and K are quantized to INT8 with one scale per block of 64
// tokens, Q.K^T accumulates in int32 (AMX tdpbssd, AVX-512 VNNI vpdpbusd, AVX2 vpmaddwd or scalar), the
// softmax runs online in fp32 with exp2, and P.V runs in bf16 on AMX, in fp16 on VNNI where the CPU has
// AVX512-FP16 (sagePvFp16Enabled), and in fp32 elsewhere.
// Variants: Scalar (the oracle), Avx2, Vnni, Amx; Avx512 without VNNI runs the Avx2 build.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "quant.h"

namespace ff::cpu {

constexpr int64_t kSageBlock = 64;     // tokens per quantization block (queries and keys)
constexpr int64_t kSageMaxHeadDim = 256;

// One head's operands, quantized and laid out for a variant.
struct SageHead {
  Variant variant = Variant::Scalar;
  int64_t qTokens = 0, kTokens = 0, headDim = 0;
  int64_t qBlocks = 0, kBlocks = 0;
  int64_t hdPad = 0;        // headDim rounded up to 64 (int8 depth)
  int64_t hdV = 0;          // headDim rounded up to 16 (output columns)
  float logitScale = 0;     // args.scale * log2(e): the softmax runs in base 2
  std::vector<float> kMean;     // [headDim] per-channel mean of k over tokens
  std::vector<int8_t> q;        // [qBlocks*64, hdPad] row-major
  std::vector<float> qScale;    // [qBlocks]
  std::vector<int8_t> k;        // of k - kMean; Scalar: [kBlocks*64, hdPad]; else packInt8Panels
  std::vector<float> kScale;    // [kBlocks]
  std::vector<int32_t> kSum;    // [kBlocks*64] sum of each int8 key row (vpdpbusd offset)
  std::vector<float> v;         // [kBlocks*64, hdV] fp32 (Scalar, Avx2, Vnni without pvF16)
  std::vector<uint16_t> vBf16;  // Amx: bf16 B tiles, [keys/32][hdV/16][16 key pairs][16][2]
  bool pvF16 = false;           // Vnni with fp16 P.V (hdV a multiple of 64)
  std::vector<uint16_t> vF16;   // pvF16: kBlocks*64 x hdV fp16 bits in key pairs (vF16Index), zero past the end
};

// Per-channel mean of head `head` of a.k over the kv_len tokens -> [head_dim] (double sums).
std::vector<float> keyChannelMean(const AttentionArgs& a, int64_t head);

// Quantizes and packs head `head` of args (ff::AttentionArgs, no key mask) for the variant.
void prepareSageHead(const AttentionArgs& args, int64_t head, Variant variant, SageHead& out);
// The same in parts, so heads x parts can run on separate threads: Meta (sizes, checks, kMean)
// first, then Q, K and V in any order (K needs Meta's kMean).
enum class SagePart { Q, K, V };
void prepareSageHeadMeta(const AttentionArgs& args, int64_t head, Variant variant, SageHead& out);
void prepareSageHeadPart(const AttentionArgs& args, int64_t head, SagePart part, SageHead& out);

// Attention of query block qb (rows qb*64.., at most 64) over the listed key blocks only:
// out: [rows, headDim] with row stride ldo. Sage attention passes every block; SLA its top-k.
void sageQueryBlock(const SageHead& head, int64_t qb, const int32_t* keyBlocks, int64_t count,
                    float* out, int64_t ldo);
void sageQueryBlockScalar(const SageHead& head, int64_t qb, const int32_t* keyBlocks,
                          int64_t count, float* out, int64_t ldo);
void sageQueryBlockAvx2(const SageHead& head, int64_t qb, const int32_t* keyBlocks,
                        int64_t count, float* out, int64_t ldo);
void sageQueryBlockVnni(const SageHead& head, int64_t qb, const int32_t* keyBlocks,
                        int64_t count, float* out, int64_t ldo);
void sageQueryBlockVnniFp16(const SageHead& head, int64_t qb, const int32_t* keyBlocks, int64_t count,
                            float* out, int64_t ldo);
void sageQueryBlockAmx(const SageHead& head, int64_t qb, const int32_t* keyBlocks, int64_t count,
                       float* out, int64_t ldo);

// Whole sage attention on the variant (bestInt8Variant() in the engine), all worker threads.
// Keys may not be masked (self-attention); a key_mask is an Internal error.
void sageAttention(const AttentionArgs& args, Variant variant);
// The scalar oracle: the same quantization, exact exp2, fp32 P.V, plain loops.
void sageAttentionReference(const AttentionArgs& args);

// The end of a sage query tile: out[r] = o[r] / l[r] for the first `live` rows, headDim columns
// (o: [16, hdV] running numerators, l: [16] denominators).
void sageWriteRows(const float* o, const float* l, int64_t live, int64_t hdV, int64_t headDim,
                   float* out, int64_t ldo);

// v: [nk, hd] (row stride ldv) -> AMX bf16 B tiles for P.V: per 32-key group and 16-column
// tile, 16 key pairs x 16 columns x 2 (the pair interleaved), zero past hd. dst must be zeroed
// ([roundUp(nk, 64) * hdV]). The AMX build converts 16 columns of two keys per step
// (vcvtneps2bf16, vpermw); the scalar one is its oracle: both round to nearest even.
void packVBf16Scalar(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, uint16_t* dst);
void packVBf16Amx(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, uint16_t* dst);

// The VNNI kernel's fp16 P.V: runnable where the CPU has AVX512-FP16 (and the Vnni variant);
// enabled unless FRAMEFLEET_CPU_SAGE_PV=fp32 or setSagePvFp16(false) (tests compare the two).
bool sageFp16Runs();
bool sagePvFp16Enabled();
bool setSagePvFp16(bool on);  // returns the previous setting
// Where key j's column d lies in SageHead::vF16 (hdV columns): keys in pairs, each pair's hdV
// columns in groups of 16, and in a group the two keys' values of a column side by side (the
// even key first), so 32 fp16 lanes hold 16 columns of both keys.
inline int64_t vF16Index(int64_t j, int64_t d, int64_t hdV) {
  return (j / 2) * 2 * hdV + (d / 16) * 32 + (d % 16) * 2 + j % 2;
}
// v: [nk, hd] (row stride ldv) -> dst: kPad x hdV fp16 bits at vF16Index (round to nearest even),
// zero past hd and past nk (kPad even); returns max |v|. Needs sageFp16Runs().
float packVFp16(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, int64_t kPad, uint16_t* dst);
// The largest |v| the fp16 P.V takes: a partial sum of 32 products p v (p <= 1; one lane over 64
// keys) stays within 32 x 1024 = 32768, about half of fp16's 65504. A head with larger (or
// infinite) values runs its P.V in fp32.
constexpr float kSageFp16MaxV = 1024.0f;

// Round-to-nearest-even fp32 -> bf16 bits.
inline uint16_t toBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace ff::cpu
