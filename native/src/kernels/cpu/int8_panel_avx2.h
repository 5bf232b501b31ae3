#pragma once
// AVX2 int8 dot products against the 16-column panels of packInt8Panels, exact in int32:
// |a| times b carrying a's sign (vpabsb, vpsignb) through vpmaddubsw, whose int16 pair sums
// cannot saturate because both operands lie in [-127, 127] (the quantizers' range: 2 * 127 * 127
// = 32258), then vpmaddwd against ones to int32. A panel's 64 bytes per 4 K-values are 16 columns
// x 4 consecutive K, so each 32-byte half is 8 columns in order. Shared by the AVX2 W8A8 GEMM and
// the AVX2 Sage attention; include only from *_avx2.cpp.
#include <immintrin.h>

#include <cstdint>

namespace ff::cpu {

// |x| of n int8 values in [-127, 127] (the magnitudes int8PanelDotAvx2 multiplies by), n % 32 == 0.
inline void int8AbsAvx2(const int8_t* x, int64_t n, int8_t* out) {
  for (int64_t i = 0; i < n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_abs_epi8(v));
  }
}

// out[r][h] = columns 8h..8h+7 of sum_k a[r][k] * panel column, r < R (up to 4: 2R accumulators,
// the two panel halves, ones and the temporaries fit AVX2's 16 registers); a: R rows of `depth`
// int8 (stride lda) and aAbs their magnitudes (int8AbsAvx2, same stride: computed once per row and
// reused across panels instead of a vpabsb per row and step), panel: depth/64 consecutive 1 KiB
// panel tiles of the same 16 columns.
template <int R>
inline void int8PanelDotAvx2(const int8_t* a, const int8_t* aAbs, int64_t lda, const int8_t* panel, int64_t depth,
                             __m256i (&out)[R][2]) {
  static_assert(R >= 1 && R <= 4, "accumulators for at most 4 rows stay in registers");
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t k4 = 0; k4 < depth / 4; ++k4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k4 * 64));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k4 * 64 + 32));
    for (int r = 0; r < R; ++r) {
      int32_t word, mword;
      __builtin_memcpy(&word, a + r * lda + k4 * 4, 4);
      __builtin_memcpy(&mword, aAbs + r * lda + k4 * 4, 4);
      const __m256i av = _mm256_set1_epi32(word);
      const __m256i mag = _mm256_set1_epi32(mword);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, _mm256_sign_epi8(b0, av)), ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, _mm256_sign_epi8(b1, av)), ones));
    }
  }
  for (int r = 0; r < R; ++r) {
    out[r][0] = acc[r][0];
    out[r][1] = acc[r][1];
  }
}

}  // namespace ff::cpu
