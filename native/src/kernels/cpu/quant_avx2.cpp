// AVX2 block and per-row quantization; rounds exactly as quantizeBlockScalar / quantizeRowsScalar
// (nearest even: cvtps_epi32 in the default rounding mode, and |value| <= 127, so the saturating
// packs never saturate).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "avx2_lanes.h"
#include "quant.h"

namespace ff::cpu {

namespace {

// v0..v3 (8 int32 each, within int8 range) as 32 int8 in order: packs work within 128-bit lanes,
// so after two of them the 4-byte groups are v0lo v1lo v2lo v3lo | v0hi v1hi v2hi v3hi, and the
// permutation puts them back.
inline __m256i packInt8(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3)), order);
}

}  // namespace

float quantizeBlockAvx2(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                        int64_t ldq) {
  // Two passes as quantizeBlockScalar: the absolute maximum of x - shift, then (x - shift) * inv
  // rounded to nearest even (cvtps_epi32; |value| <= 127). 32 columns at a time, the rest scalar.
  const __m256 signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const int64_t wide = cols / 32 * 32;
  auto at = [&](int64_t r, int64_t c) {
    const __m256 v = _mm256_loadu_ps(x + r * ldx + c);
    return shift ? _mm256_sub_ps(v, _mm256_loadu_ps(shift + c)) : v;
  };
  auto one = [&](int64_t r, int64_t c) { return x[r * ldx + c] - (shift ? shift[c] : 0.0f); };
  __m256 vmax = _mm256_setzero_ps();
  float tailMax = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < wide; c += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(at(r, c), signMask));
    for (int64_t c = wide; c < cols; ++c) tailMax = std::fmax(tailMax, std::fabs(one(r, c)));
  }
  const float absMax = std::fmax(hmaxAvx2(vmax), tailMax);
  const float invScalar = int8InverseScaleForAbsMax(absMax);
  const __m256 inv = _mm256_set1_ps(invScalar);
  for (int64_t r = 0; r < rows; ++r) {
    auto toInt = [&](int64_t c) { return _mm256_cvtps_epi32(_mm256_mul_ps(at(r, c), inv)); };
    for (int64_t c = 0; c < wide; c += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + r * ldq + c), packInt8(toInt(c), toInt(c + 8), toInt(c + 16), toInt(c + 24)));
    for (int64_t c = wide; c < cols; ++c) q[r * ldq + c] = static_cast<int8_t>(std::nearbyint(one(r, c) * invScalar));
  }
  return int8ScaleForAbsMax(absMax);
}

// Each row is a one-row block (quantizeBlockAvx2), its padding zeroed.
void quantizeRowsAvx2(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                      float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    scale[r] = quantizeBlockAvx2(x + r * ldx, ldx, 1, cols, nullptr, q + r * ldq, ldq);
    std::memset(q + r * ldq + cols, 0, static_cast<size_t>(ldq - cols));
  }
}

}  // namespace ff::cpu
