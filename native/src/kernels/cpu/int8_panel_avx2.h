#pragma once
// AVX2 int8 dot products against the 16-column panels of packInt8Panels: bytes widened to int16
// and multiplied with vpmaddwd (exact, no u8 x s8 saturation), int32 partial pairs summed at the
// end. Shared by the AVX2 W8A8 GEMM and the AVX2 Sage attention; include only from *_avx2.cpp.
#include <immintrin.h>

#include <cstdint>

namespace ff::cpu {

// out[r][0..16) = sum_k a[r][k] * panel column; a: R rows of `depth` int8 (stride lda), panel:
// depth/64 consecutive 1 KiB panel tiles of the same 16 columns.
template <int R>
inline void int8PanelDotAvx2(const int8_t* a, int64_t lda, const int8_t* panel, int64_t depth,
                             __m256i (&out)[R][2]) {
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  for (int64_t k4 = 0; k4 < depth / 4; ++k4) {
    const int8_t* wp = panel + k4 * 64;
    __m256i b[4];
    for (int q = 0; q < 4; ++q) {
      b[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + q * 16)));
    }
    for (int r = 0; r < R; ++r) {
      int32_t word;
      __builtin_memcpy(&word, a + r * lda + k4 * 4, 4);
      const __m256i av = _mm256_cvtepi8_epi16(_mm_set1_epi32(word));
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(av, b[q]));
    }
  }
  // acc[r][q] holds columns 4q..4q+3 as adjacent partial pairs; hadd + permute restores order.
  for (int r = 0; r < R; ++r) {
    out[r][0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xd8);
    out[r][1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xd8);
  }
}

}  // namespace ff::cpu
