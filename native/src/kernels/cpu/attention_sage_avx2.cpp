// Sage attention on AVX2: S = Q.K^T through int8PanelDotAvx2 (exact int32), online softmax in
// fp32 with an AVX2 exp2, P.V with fp32 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention_sage.h"
#include "avx2_lanes.h"
#include "int8_panel_avx2.h"
#include "kernels/cpu/vmath.h"

namespace ff::cpu {

namespace {

constexpr int64_t kChunkKeys = 256;
constexpr int64_t kChunkBlocks = kChunkKeys / kSageBlock;

// 2^x for x <= 0: 2^n * 2^f with |f| <= 0.5, the same degree-6 polynomial as the AVX-512 path.
inline __m256 exp2Avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-126.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly[i]));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}

// The online-softmax step of one row (see onlineSoftmaxRow in sage_softmax_avx512.h).
float onlineSoftmaxRowAvx2(float* s, int64_t cols, float& m, float& l) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (int64_t c = 0; c < cols; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + c));
  const float mNew = std::fmax(m, hmaxAvx2(vmax));
  const float corr = std::isinf(m) ? 0.0f : std::exp2(m - mNew);
  const __m256 vm = _mm256_set1_ps(mNew), ninf = _mm256_set1_ps(-INFINITY);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t c = 0; c < cols; c += 8) {
    const __m256 sv = _mm256_loadu_ps(s + c);
    const __m256 live = _mm256_cmp_ps(sv, ninf, _CMP_NEQ_OQ);
    const __m256 p = _mm256_and_ps(live, exp2Avx2(_mm256_sub_ps(sv, vm)));
    vsum = _mm256_add_ps(vsum, p);
    _mm256_storeu_ps(s + c, p);
  }
  l = l * corr + hsumAvx2(vsum);
  m = mNew;
  return corr;
}

}  // namespace

void sageQueryBlockAvx2(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                        float* out, int64_t ldo) {
  const int64_t rows = std::min(kSageBlock, h.qTokens - qb * kSageBlock);
  const int64_t kSteps = h.hdPad / 64;
  alignas(32) float s[16 * kChunkKeys];
  alignas(32) float o[16 * kSageMaxHeadDim];
  alignas(32) int8_t qAbs[16 * kSageMaxHeadDim];
  float m[16], l[16];
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int8_t* qRows = h.q.data() + (qb * kSageBlock + r0) * h.hdPad;
    int8AbsAvx2(qRows, 16 * h.hdPad, qAbs);  // once for the 16 rows' products with every key
    std::fill(m, m + 16, -INFINITY);
    std::fill(l, l + 16, 0.0f);
    std::fill(o, o + 16 * h.hdV, 0.0f);
    for (int64_t c0 = 0; c0 < count; c0 += kChunkBlocks) {
      const int64_t nb = std::min(kChunkBlocks, count - c0);
      const int64_t cols = nb * kSageBlock;
      for (int64_t bi = 0; bi < nb; ++bi) {
        const int64_t kb = keyBlocks[c0 + bi];
        const __m256 f = _mm256_set1_ps(h.qScale[static_cast<size_t>(qb)] * h.kScale[static_cast<size_t>(kb)] * h.logitScale);
        for (int64_t g = 0; g < 4; ++g) {
          const int64_t key0 = kb * kSageBlock + g * 16;
          const int8_t* panel = h.k.data() + (kb * 4 + g) * kSteps * 1024;
          for (int64_t r = 0; r < 16; r += 4) {
            __m256i dots[4][2];
            int8PanelDotAvx2<4>(qRows + r * h.hdPad, qAbs + r * h.hdPad, h.hdPad, panel, h.hdPad, dots);
            for (int i = 0; i < 4; ++i)
              for (int half = 0; half < 2; ++half)
                _mm256_storeu_ps(s + (r + i) * kChunkKeys + bi * kSageBlock + g * 16 + half * 8,
                                 _mm256_mul_ps(_mm256_cvtepi32_ps(dots[i][half]), f));
          }
          for (int64_t j = std::max<int64_t>(0, h.kTokens - key0); j < 16; ++j)
            for (int64_t r = 0; r < 16; ++r) s[r * kChunkKeys + bi * kSageBlock + g * 16 + j] = -INFINITY;
        }
      }
      for (int64_t r = 0; r < 16; ++r) {
        float* row = s + r * kChunkKeys;
        const __m256 corr = _mm256_set1_ps(onlineSoftmaxRowAvx2(row, cols, m[r], l[r]));
        float* orow = o + r * h.hdV;
        auto keyRow = [&](int64_t j) {
          return h.v.data() + (keyBlocks[c0 + j / kSageBlock] * kSageBlock + j % kSageBlock) * h.hdV;
        };
        if (h.hdV == 64) {
          // The row's 64 running outputs in 8 registers across all keys (the same products in
          // the same order as the general loop below, without a load and store per key).
          __m256 acc[8];
          for (int c = 0; c < 8; ++c) acc[c] = _mm256_mul_ps(_mm256_loadu_ps(orow + 8 * c), corr);
          for (int64_t j = 0; j < cols; ++j) {
            const float pj = row[j];
            if (pj == 0.0f) continue;
            const float* vj = keyRow(j);
            const __m256 vp = _mm256_set1_ps(pj);
            for (int c = 0; c < 8; ++c) acc[c] = _mm256_fmadd_ps(vp, _mm256_loadu_ps(vj + 8 * c), acc[c]);
          }
          for (int c = 0; c < 8; ++c) _mm256_storeu_ps(orow + 8 * c, acc[c]);
          continue;
        }
        for (int64_t c = 0; c < h.hdV; c += 8) _mm256_storeu_ps(orow + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), corr));
        for (int64_t j = 0; j < cols; ++j) {
          const float pj = row[j];
          if (pj == 0.0f) continue;
          const float* vj = keyRow(j);
          const __m256 vp = _mm256_set1_ps(pj);
          for (int64_t c = 0; c < h.hdV; c += 8)
            _mm256_storeu_ps(orow + c, _mm256_fmadd_ps(vp, _mm256_loadu_ps(vj + c), _mm256_loadu_ps(orow + c)));
        }
      }
    }
    sageWriteRows(o, l, std::min<int64_t>(16, rows - r0), h.hdV, h.headDim, out + r0 * ldo, ldo);
  }
}

}  // namespace ff::cpu
