// Sage attention on AVX-512 VNNI (no AMX): S = Q.K^T with vpdpbusd on q + 128 (u8) against the
// signed packed keys, corrected by 128 * (sum of the key's int8 values); online softmax in fp32;
// P.V with fp32 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention_sage.h"
#include "sage_softmax_avx512.h"
#include "vnni_dot4x4.h"

namespace ff::cpu {

namespace {

constexpr int64_t kChunkKeys = 256;
constexpr int64_t kChunkBlocks = kChunkKeys / kSageBlock;

// s[r, 0..64) = dot(qu[r], key) * factor for 16 query rows and one 64-key block (four packed
// 16-key tiles of kSteps 16x64 panels each, tile g at keyBlock + g * tileBytes), keys past
// liveKeys -inf. Four rows x four tiles per pass (dotBlock4x4).
void scoreBlock(const uint8_t* qu, int64_t hdPad, const int8_t* keyBlock, int64_t tileBytes, const int32_t* keySum,
                float factor, int64_t liveKeys, float* s, int64_t lds) {
  const __m512 vf = _mm512_set1_ps(factor), ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < 16; r += 4) {
    __m512i acc[4][4];
    dotBlock4x4(qu + r * hdPad, hdPad, keyBlock, tileBytes, hdPad / 4, acc);
    for (int g = 0; g < 4; ++g) {
      const __m512i offset = _mm512_slli_epi32(_mm512_loadu_si512(keySum + g * 16), 7);
      const int64_t live = std::clamp<int64_t>(liveKeys - g * 16, 0, 16);
      const __mmask16 liveMask = static_cast<__mmask16>((1u << live) - 1);
      for (int i = 0; i < 4; ++i) {
        const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][g], offset)), vf);
        _mm512_storeu_ps(s + (r + i) * lds + g * 16, _mm512_mask_blend_ps(liveMask, ninf, v));
      }
    }
  }
}

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
  const int64_t rows = std::min(kSageBlock, h.qTokens - qb * kSageBlock);
  const int64_t kSteps = h.hdPad / 64;
  alignas(64) float s[16 * kChunkKeys];
  alignas(64) uint8_t qu[16 * kSageMaxHeadDim];
  alignas(64) float o[16 * kSageMaxHeadDim];
  float m[16], l[16];
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int8_t* qRows = h.q.data() + (qb * kSageBlock + r0) * h.hdPad;
    for (int64_t i = 0; i < 16 * h.hdPad; ++i) qu[i] = static_cast<uint8_t>(qRows[i] ^ 0x80);
    std::fill(m, m + 16, -INFINITY);
    std::fill(l, l + 16, 0.0f);
    std::fill(o, o + 16 * h.hdV, 0.0f);
    for (int64_t c0 = 0; c0 < count; c0 += kChunkBlocks) {
      const int64_t nb = std::min(kChunkBlocks, count - c0);
      const int64_t cols = nb * kSageBlock;
      for (int64_t bi = 0; bi < nb; ++bi) {
        const int64_t kb = keyBlocks[c0 + bi];
        const float f = h.qScale[static_cast<size_t>(qb)] * h.kScale[static_cast<size_t>(kb)] * h.logitScale;
        scoreBlock(qu, h.hdPad, h.k.data() + kb * 4 * kSteps * 1024, kSteps * 1024, h.kSum.data() + kb * kSageBlock, f,
                   h.kTokens - kb * kSageBlock, s + bi * kSageBlock, kChunkKeys);
      }
      float corr[16];
      for (int64_t r = 0; r < 16; ++r) {
        float* row = s + r * kChunkKeys;
        corr[r] = onlineSoftmaxRow(row, cols, m[r], l[r], row);
      }
      // P.V four rows at a time: each V vector loaded feeds four rows' FMAs (16 accumulators, so
      // the FMA latency is covered). A zero p adds an exact zero (V is finite, zero past the end),
      // so every output is the same sum in the same order as one row at a time.
      if (h.hdV == 64) {
        for (int64_t rg = 0; rg < 16; rg += 4)
          pvRows64(h, s + rg * kChunkKeys, keyBlocks + c0, nb, corr + rg, o + rg * 64);
        continue;
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
            const float* vb = h.v.data() + keyBlocks[c0 + bi] * kSageBlock * h.hdV + c;
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
    }
    sageWriteRows(o, l, std::min<int64_t>(16, rows - r0), h.hdV, h.headDim, out + r0 * ldo, ldo);
  }
}

}  // namespace ff::cpu
