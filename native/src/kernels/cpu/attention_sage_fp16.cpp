// Sage attention on AVX-512 VNNI with AVX512-FP16: the query tiles of attention_sage_vnni_impl.h
// (INT8 scores, fp32 online softmax) with P.V on fp16 FMAs, 32 lanes per vfmadd231ph, twice the
// multiply-adds of fp32 FMAs per instruction. P is rounded to fp16 and V is stored in fp16 with
// the keys of a pair interleaved (vF16Index), so one 32-bit broadcast of two neighbouring p
// values feeds every FMA of the pair: lane 2t takes the even key's product, lane 2t + 1 the odd
// key's. (A 16-bit broadcast of each p costs a shuffle uop per key that competes with the FMAs
// for the same ports; the 32-bit one is a plain load.) Every 64 keys the fp16 partial sums, each
// over 32 products (p <= 1), go into fp32 accumulators kept in the same pair form, and the two
// lanes of a column are added after each chunk. SageAttention runs its P.V in fp16 on GPUs
// likewise.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention_sage.h"
#include "attention_sage_vnni_impl.h"
#include "fp16_pairs.h"

namespace ff::cpu {

namespace {

constexpr int64_t kFlushKeys = 64;  // keys per fp16 partial sum: 32 products per lane

// Pair-form o2[i, 2c .. 2c + 128) += the chunk's p[i, j] v_j[c .. c + 64) for four rows i (p: fp16
// [4, kChunkKeys], row stride kChunkKeys; o2 rows of stride 2 hdV, already rescaled). Lane 2t of
// each 32-float group holds the even keys' sum for its column, lane 2t + 1 the odd keys'.
void pvRowsFp16(const SageHead& h, const uint16_t* p, const int32_t* blocks, int64_t nb, int64_t c, float* o2) {
  const int64_t pairStride = 2 * h.hdV;  // fp16 values per key pair
  for (int64_t bi = 0; bi < nb; ++bi) {
    const uint16_t* vb = h.vF16.data() + blocks[bi] * kSageBlock * h.hdV + 2 * c;
    const uint16_t* pb = p + bi * kSageBlock;
    for (int64_t j0 = 0; j0 < kSageBlock; j0 += kFlushKeys) {
      __m512h acc[4][4];
      fp16PairBlock4x4(pb + j0, pb + kChunkKeys + j0, pb + 2 * kChunkKeys + j0, pb + 3 * kChunkKeys + j0,
                       vb + (j0 / 2) * pairStride, pairStride, kFlushKeys / 2, acc);
      for (int i = 0; i < 4; ++i)
        for (int g = 0; g < 4; ++g) {
          __m512 lo, hi;
          pairLanesToFp32(acc[i][g], lo, hi);
          float* dst = o2 + i * pairStride + 2 * c + g * 32;
          _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), lo));
          _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_loadu_ps(dst + 16), hi));
        }
    }
  }
}

}  // namespace

bool sageFp16Runs() { return variant_score(Variant::Vnni) > 0 && cpu_features().avx512_fp16; }

float packVFp16(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, int64_t kPad, uint16_t* dst) {
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  // 16 columns of the even key in the low half, the odd key's in the high half -> interleaved.
  alignas(64) static constexpr int16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                          8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  __m512 vmax = _mm512_setzero_ps();
  auto half = [&](int64_t j, int64_t c) {
    const __mmask16 m = j < nk ? static_cast<__mmask16>((1u << std::clamp<int64_t>(hd - c, 0, 16)) - 1) : 0;
    const __m512 x = _mm512_maskz_loadu_ps(m, v + j * ldv + c);
    vmax = _mm512_max_ps(vmax, _mm512_and_ps(x, signMask));
    return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  };
  for (int64_t j = 0; j < kPad; j += 2) {
    uint16_t* d = dst + j * hdV;
    for (int64_t c = 0; c < hdV; c += 16) {
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(half(j, c)), half(j + 1, c), 1);
      _mm512_storeu_si512(d + 2 * c, _mm512_permutexvar_epi16(interleave, both));
    }
  }
  return _mm512_reduce_max_ps(vmax);
}

void sageQueryBlockVnniFp16(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count, float* out,
                            int64_t ldo) {
  alignas(64) uint16_t p[16 * kChunkKeys];
  alignas(64) float o2[16 * 2 * kSageMaxHeadDim];  // pair-form running numerators, rows of 2 hdV
  const int64_t pairStride = 2 * h.hdV;
  sageQueryTiles(h, qb, keyBlocks, count, out, ldo,
                 [&](float* s, int64_t cols, float* m, float* l, const int32_t* blocks, int64_t nb, float* o) {
    for (int64_t r = 0; r < 16; ++r) {
      // The softmax writes P as fp16 straight away (the denominator sums the fp32 values).
      uint16_t* pr = p + r * kChunkKeys;
      const float corr = onlineSoftmaxRowTo(s + r * kChunkKeys, cols, m[r], l[r], [&](int64_t c, __m512 v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pr + c), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      });
      // corr is 0 on a tile's first chunk: the pair-form rows start from zero.
      float* row = o2 + r * pairStride;
      const __m512 vc = _mm512_set1_ps(corr);
      for (int64_t c = 0; c < pairStride; c += 16)
        _mm512_storeu_ps(row + c, corr == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(_mm512_loadu_ps(row + c), vc));
    }
    for (int64_t rg = 0; rg < 16; rg += 4)
      for (int64_t c = 0; c < h.hdV; c += 64) pvRowsFp16(h, p + rg * kChunkKeys, blocks, nb, c, o2 + rg * pairStride);
    // o[r, 16 g + t] = even lane + odd lane of o2[r, 32 g + 2 t ..].
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t g = 0; g < h.hdV / 16; ++g) {
        const float* src = o2 + r * pairStride + g * 32;
        _mm512_storeu_ps(o + r * h.hdV + g * 16, addPairLanes(_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16)));
      }
  });
}

}  // namespace ff::cpu
