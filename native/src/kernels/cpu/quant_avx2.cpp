// AVX2 per-row quantization; rounds exactly as quantizeRowsScalar (nearest even: cvtps_epi32 in the
// default rounding mode, and |value| <= 127, so the saturating packs never saturate).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "quant.h"

namespace ff::cpu {

void quantizeRowsAvx2(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                      float* scale) {
  const __m256 signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // packs work within 128-bit lanes: after two packs the 4-byte groups are v0lo v1lo v2lo v3lo |
  // v0hi v1hi v2hi v3hi; this permutation puts them back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    int8_t* qr = q + r * ldq;
    __m256 vmax = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(xr + c), signMask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float absMax = _mm_cvtss_f32(m4);
    for (; c < cols; ++c) absMax = std::fmax(absMax, std::fabs(xr[c]));
    const float invScalar = int8InverseScaleForAbsMax(absMax);
    const __m256 inv = _mm256_set1_ps(invScalar);
    auto toInt = [&](int64_t at) { return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + at), inv)); };
    for (c = 0; c + 32 <= cols; c += 32) {
      const __m256i p01 = _mm256_packs_epi32(toInt(c), toInt(c + 8));
      const __m256i p23 = _mm256_packs_epi32(toInt(c + 16), toInt(c + 24));
      const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + c), p);
    }
    for (; c < cols; ++c) qr[c] = static_cast<int8_t>(std::nearbyint(xr[c] * invScalar));
    std::memset(qr + cols, 0, static_cast<size_t>(ldq - cols));
    scale[r] = int8ScaleForAbsMax(absMax);
  }
}

}  // namespace ff::cpu
