// Sage attention on AVX-512 VNNI (no AMX): the query tiles of attention_sage_vnni_impl.h with
// P.V on fp32 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention_sage.h"
#include "attention_sage_vnni_impl.h"

namespace ff::cpu {

namespace {

// P.V at head dim 64 (hdV 64, so every load is a whole vector) for four rows: o[i] = o[i] *
// corr[i] + sum over the chunk's keys of p[i, j] v_j, each V row load feeding four rows' FMAs,
// the 16 accumulators in named registers. The same FMAs in the same order as the general loop.
void pvRows64(const SageHead& h, const float* pb, const int32_t* keyBlocks, int64_t nb, const float* corr, float* o) {
#define FF_PV_ROW(i, a0, a1, a2, a3)                                \
  {                                                                 \
    const __m512 pv = _mm512_set1_ps(pb[(i) * kChunkKeys + key]);   \
    a0 = _mm512_fmadd_ps(pv, v0, a0);                               \
    a1 = _mm512_fmadd_ps(pv, v1, a1);                               \
    a2 = _mm512_fmadd_ps(pv, v2, a2);                               \
    a3 = _mm512_fmadd_ps(pv, v3, a3);                               \
  }
  __m512 a00 = _mm512_mul_ps(_mm512_loadu_ps(o), _mm512_set1_ps(corr[0]));
  __m512 a01 = _mm512_mul_ps(_mm512_loadu_ps(o + 16), _mm512_set1_ps(corr[0]));
  __m512 a02 = _mm512_mul_ps(_mm512_loadu_ps(o + 32), _mm512_set1_ps(corr[0]));
  __m512 a03 = _mm512_mul_ps(_mm512_loadu_ps(o + 48), _mm512_set1_ps(corr[0]));
  __m512 a10 = _mm512_mul_ps(_mm512_loadu_ps(o + 64), _mm512_set1_ps(corr[1]));
  __m512 a11 = _mm512_mul_ps(_mm512_loadu_ps(o + 80), _mm512_set1_ps(corr[1]));
  __m512 a12 = _mm512_mul_ps(_mm512_loadu_ps(o + 96), _mm512_set1_ps(corr[1]));
  __m512 a13 = _mm512_mul_ps(_mm512_loadu_ps(o + 112), _mm512_set1_ps(corr[1]));
  __m512 a20 = _mm512_mul_ps(_mm512_loadu_ps(o + 128), _mm512_set1_ps(corr[2]));
  __m512 a21 = _mm512_mul_ps(_mm512_loadu_ps(o + 144), _mm512_set1_ps(corr[2]));
  __m512 a22 = _mm512_mul_ps(_mm512_loadu_ps(o + 160), _mm512_set1_ps(corr[2]));
  __m512 a23 = _mm512_mul_ps(_mm512_loadu_ps(o + 176), _mm512_set1_ps(corr[2]));
  __m512 a30 = _mm512_mul_ps(_mm512_loadu_ps(o + 192), _mm512_set1_ps(corr[3]));
  __m512 a31 = _mm512_mul_ps(_mm512_loadu_ps(o + 208), _mm512_set1_ps(corr[3]));
  __m512 a32 = _mm512_mul_ps(_mm512_loadu_ps(o + 224), _mm512_set1_ps(corr[3]));
  __m512 a33 = _mm512_mul_ps(_mm512_loadu_ps(o + 240), _mm512_set1_ps(corr[3]));
  for (int64_t bi = 0; bi < nb; ++bi) {
    const float* vb = h.v.data() + keyBlocks[bi] * kSageBlock * 64;
    for (int64_t j = 0; j < kSageBlock; ++j) {
      const float* vr = vb + j * 64;
      const __m512 v0 = _mm512_loadu_ps(vr), v1 = _mm512_loadu_ps(vr + 16), v2 = _mm512_loadu_ps(vr + 32),
                   v3 = _mm512_loadu_ps(vr + 48);
      const int64_t key = bi * kSageBlock + j;
      FF_PV_ROW(0, a00, a01, a02, a03)
      FF_PV_ROW(1, a10, a11, a12, a13)
      FF_PV_ROW(2, a20, a21, a22, a23)
      FF_PV_ROW(3, a30, a31, a32, a33)
    }
  }
#undef FF_PV_ROW
  const __m512 acc[16] = {a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33};
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(o + i * 16, acc[i]);
}

}  // namespace

void sageQueryBlockVnni(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                        float* out, int64_t ldo) {
  sageQueryTiles(h, qb, keyBlocks, count, out, ldo,
                 [&](float* s, int64_t cols, float* m, float* l, const int32_t* blocks, int64_t nb, float* o) {
    float corr[16];
    for (int64_t r = 0; r < 16; ++r) corr[r] = onlineSoftmaxRow(s + r * kChunkKeys, cols, m[r], l[r], s + r * kChunkKeys);
    // P.V four rows at a time: each V vector loaded feeds four rows' FMAs (16 accumulators, so
    // the FMA latency is covered). A zero p adds an exact zero (V is finite, zero past the end),
    // so every output is the same sum in the same order as one row at a time.
    if (h.hdV == 64) {
      for (int64_t rg = 0; rg < 16; rg += 4) pvRows64(h, s + rg * kChunkKeys, blocks, nb, corr + rg, o + rg * 64);
      return;
    }
    for (int64_t rg = 0; rg < 16; rg += 4)
      for (int64_t c = 0; c < h.hdV; c += 64) {
        const int64_t width = std::min<int64_t>(64, h.hdV - c);
        __mmask16 mk[4];
        __m512 acc[4][4];
        for (int t = 0; t < 4; ++t) {
          const int64_t w = std::clamp<int64_t>(width - t * 16, 0, 16);
          mk[t] = static_cast<__mmask16>((1u << w) - 1);
          for (int i = 0; i < 4; ++i)
            acc[i][t] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[t], o + (rg + i) * h.hdV + c + t * 16),
                                      _mm512_set1_ps(corr[rg + i]));
        }
        for (int64_t bi = 0; bi < nb; ++bi) {
          const float* vb = h.v.data() + blocks[bi] * kSageBlock * h.hdV + c;
          const float* pb = s + rg * kChunkKeys + bi * kSageBlock;
          for (int64_t j = 0; j < kSageBlock; ++j) {
            __m512 vv[4];
            for (int t = 0; t < 4; ++t) vv[t] = _mm512_maskz_loadu_ps(mk[t], vb + j * h.hdV + t * 16);
            for (int i = 0; i < 4; ++i) {
              const __m512 pv = _mm512_set1_ps(pb[i * kChunkKeys + j]);
              for (int t = 0; t < 4; ++t) acc[i][t] = _mm512_fmadd_ps(pv, vv[t], acc[i][t]);
            }
          }
        }
        for (int i = 0; i < 4; ++i)
          for (int t = 0; t < 4; ++t) _mm512_mask_storeu_ps(o + (rg + i) * h.hdV + c + t * 16, mk[t], acc[i][t]);
      }
  });
}

}  // namespace ff::cpu
