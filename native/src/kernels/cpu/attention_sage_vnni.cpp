// Sage attention on AVX-512 VNNI (no AMX): S = Q.K^T with vpdpbusd on q + 128 (u8) against the
// signed packed keys, corrected by 128 * (sum of the key's int8 values); online softmax in fp32;
// P.V with fp32 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention_sage.h"
#include "sage_softmax_avx512.h"

namespace ff::cpu {

namespace {

constexpr int64_t kChunkKeys = 256;
constexpr int64_t kChunkBlocks = kChunkKeys / kSageBlock;

// s[r, 0..16) = dot(qu[r], key tile) for 16 rows; the key tile is kSteps packed 16x64 panels.
void scoreTile(const uint8_t* qu, int64_t hdPad, const int8_t* keyTile, const int32_t* keySum,
               float factor, int64_t liveKeys, float* s, int64_t lds) {
  const int64_t k4Count = hdPad / 4;
  const __m512i offset = _mm512_slli_epi32(_mm512_loadu_si512(keySum), 7);
  const __mmask16 liveMask = static_cast<__mmask16>((1u << liveKeys) - 1);
  for (int64_t r = 0; r < 16; r += 4) {
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    for (int64_t k4 = 0; k4 < k4Count; ++k4) {
      // k4 walks the 64-byte rows of consecutive 1 KiB panels: kSteps panels are contiguous.
      const __m512i b = _mm512_loadu_si512(keyTile + k4 * 64);
      for (int i = 0; i < 4; ++i) {
        int32_t word;
        __builtin_memcpy(&word, qu + (r + i) * hdPad + k4 * 4, 4);
        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(word), b);
      }
    }
    for (int i = 0; i < 4; ++i) {
      const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], offset)),
                                     _mm512_set1_ps(factor));
      _mm512_storeu_ps(s + (r + i) * lds, _mm512_mask_blend_ps(liveMask, _mm512_set1_ps(-INFINITY), v));
    }
  }
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
        for (int64_t g = 0; g < 4; ++g) {
          const int64_t key0 = kb * kSageBlock + g * 16;
          const int64_t live = std::clamp<int64_t>(h.kTokens - key0, 0, 16);
          scoreTile(qu, h.hdPad, h.k.data() + (kb * 4 + g) * kSteps * 1024, h.kSum.data() + key0, f,
                    live, s + bi * kSageBlock + g * 16, kChunkKeys);
        }
      }
      float corr[16];
      for (int64_t r = 0; r < 16; ++r) {
        float* row = s + r * kChunkKeys;
        corr[r] = onlineSoftmaxRow(row, cols, m[r], l[r], row);
      }
      // P.V four rows at a time: each V vector loaded feeds four rows' FMAs (16 accumulators, so
      // the FMA latency is covered). A zero p adds an exact zero (V is finite, zero past the end),
      // so every output is the same sum in the same order as one row at a time.
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
