// Sage attention on AVX-512 VNNI with AVX512-FP16: the query tiles of attention_sage_vnni_impl.h
// (INT8 scores, fp32 online softmax) with P.V on fp16 FMAs, 32 lanes per vfmadd231ph, twice the
// multiply-adds of fp32 FMAs per instruction. P is rounded to fp16, V is stored in fp16, and the
// fp16 partial sums of every 32 keys are added into the fp32 row accumulators, so no fp16 sum runs
// over more than 32 products (each p <= 1). SageAttention runs its P.V in fp16 on GPUs likewise.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention_sage.h"
#include "attention_sage_vnni_impl.h"

namespace ff::cpu {

namespace {

constexpr int64_t kFlushKeys = 32;  // keys per fp16 partial sum

inline __m512h broadcastHalf(const uint16_t* p) { return _mm512_castsi512_ph(_mm512_set1_epi16(static_cast<short>(*p))); }

// o[i, c .. c + 64) += sum over the chunk's keys of p[i, j] v_j[c .. c + 64) for four rows i (p:
// fp16 [4, kChunkKeys], row stride kChunkKeys; o rows of stride hdV, already rescaled).
void pvRowsFp16(const SageHead& h, const uint16_t* p, const int32_t* blocks, int64_t nb, int64_t c, float* o) {
  for (int64_t bi = 0; bi < nb; ++bi) {
    const uint16_t* vb = h.vF16.data() + blocks[bi] * kSageBlock * h.hdV + c;
    for (int64_t j0 = 0; j0 < kSageBlock; j0 += kFlushKeys) {
      __m512h a00 = _mm512_setzero_ph(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      for (int64_t j = j0; j < j0 + kFlushKeys; ++j) {
        const __m512h v0 = _mm512_loadu_ph(vb + j * h.hdV), v1 = _mm512_loadu_ph(vb + j * h.hdV + 32);
        const uint16_t* pj = p + bi * kSageBlock + j;
        __m512h pv = broadcastHalf(pj);
        a00 = _mm512_fmadd_ph(pv, v0, a00);
        a01 = _mm512_fmadd_ph(pv, v1, a01);
        pv = broadcastHalf(pj + kChunkKeys);
        a10 = _mm512_fmadd_ph(pv, v0, a10);
        a11 = _mm512_fmadd_ph(pv, v1, a11);
        pv = broadcastHalf(pj + 2 * kChunkKeys);
        a20 = _mm512_fmadd_ph(pv, v0, a20);
        a21 = _mm512_fmadd_ph(pv, v1, a21);
        pv = broadcastHalf(pj + 3 * kChunkKeys);
        a30 = _mm512_fmadd_ph(pv, v0, a30);
        a31 = _mm512_fmadd_ph(pv, v1, a31);
      }
      const __m512h acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
      for (int i = 0; i < 4; ++i)
        for (int half = 0; half < 2; ++half) {
          const __m512i bits = _mm512_castph_si512(acc[i][half]);
          float* dst = o + i * h.hdV + c + half * 32;
          _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_cvtph_ps(_mm512_castsi512_si256(bits))));
          _mm512_storeu_ps(dst + 16,
                           _mm512_add_ps(_mm512_loadu_ps(dst + 16), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(bits, 1))));
        }
    }
  }
}

}  // namespace

bool sageFp16Runs() { return variant_score(Variant::Vnni) > 0 && cpu_features().avx512_fp16; }

float packVFp16(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, int64_t kPad, uint16_t* dst) {
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  for (int64_t j = 0; j < kPad; ++j) {
    uint16_t* d = dst + j * hdV;
    for (int64_t c = 0; c < hdV; c += 16) {
      const __mmask16 m = j < nk ? static_cast<__mmask16>((1u << std::clamp<int64_t>(hd - c, 0, 16)) - 1) : 0;
      const __m512 x = _mm512_maskz_loadu_ps(m, v + j * ldv + c);
      vmax = _mm512_max_ps(vmax, _mm512_and_ps(x, signMask));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }
  return _mm512_reduce_max_ps(vmax);
}

void sageQueryBlockVnniFp16(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count, float* out,
                            int64_t ldo) {
  alignas(64) uint16_t p[16 * kChunkKeys];
  sageQueryTiles(h, qb, keyBlocks, count, out, ldo,
                 [&](float* s, int64_t cols, float* m, float* l, const int32_t* blocks, int64_t nb, float* o) {
    for (int64_t r = 0; r < 16; ++r) {
      // The softmax writes P as fp16 straight away (the denominator sums the fp32 values).
      uint16_t* pr = p + r * kChunkKeys;
      const float corr = onlineSoftmaxRowTo(s + r * kChunkKeys, cols, m[r], l[r], [&](int64_t c, __m512 v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pr + c), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      });
      const __m512 vc = _mm512_set1_ps(corr);
      for (int64_t c = 0; c < h.hdV; c += 16)
        _mm512_storeu_ps(o + r * h.hdV + c, _mm512_mul_ps(_mm512_loadu_ps(o + r * h.hdV + c), vc));
    }
    for (int64_t rg = 0; rg < 16; rg += 4)
      for (int64_t c = 0; c < h.hdV; c += 64) pvRowsFp16(h, p + rg * kChunkKeys, blocks, nb, c, o + rg * h.hdV);
  });
}

}  // namespace ff::cpu
