// W8A8 GEMM on AVX2: bytes widened to int16 and multiplied with vpmaddwd (exact, no u8/s8
// saturation), int32 partial pairs summed at the end. Reads the same 16-column panels as AMX.
#include <immintrin.h>

#include <algorithm>

#include "gemm_int8.h"

namespace ff::cpu {

namespace {

// acc holds columns 4c..4c+3 as adjacent partial pairs; returns 8 column sums (cols 0..7).
inline __m256i sumPairs(__m256i cols0to3, __m256i cols4to7) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(cols0to3, cols4to7), 0xd8);
}

template <int R>
void avx2Panel(const Int8Linear& layer, const int8_t* xq, int64_t lda, const float* xs,
               int64_t nb, float* y, int64_t ldy) {
  const int64_t kBlocks = layer.inPadded / 64;
  const int8_t* w = layer.weights.data() + nb * kBlocks * 1024;
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  for (int64_t kb = 0; kb < kBlocks; ++kb) {
    for (int64_t k4 = 0; k4 < 16; ++k4) {
      const int8_t* wp = w + kb * 1024 + k4 * 64;
      __m256i b[4];
      for (int q = 0; q < 4; ++q) {
        b[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + q * 16)));
      }
      const int64_t k = kb * 64 + k4 * 4;
      for (int r = 0; r < R; ++r) {
        int32_t word;
        __builtin_memcpy(&word, xq + r * lda + k, 4);
        const __m256i a = _mm256_cvtepi8_epi16(_mm_set1_epi32(word));
        for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(a, b[q]));
      }
    }
  }
  for (int half = 0; half < 2; ++half) {
    const int64_t col = nb * 16 + half * 8;
    if (col >= layer.out) break;
    const __m256 wScale = _mm256_loadu_ps(layer.scale.data() + col);
    const __m256 bias = _mm256_loadu_ps(layer.bias.data() + col);
    const int64_t valid = std::min<int64_t>(8, layer.out - col);
    for (int r = 0; r < R; ++r) {
      const __m256i sums = sumPairs(acc[r][2 * half], acc[r][2 * half + 1]);
      const __m256 s = _mm256_mul_ps(wScale, _mm256_set1_ps(xs[r]));
      const __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), s, bias);
      if (valid == 8) {
        _mm256_storeu_ps(y + r * ldy + col, v);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, v);
        std::copy(tmp, tmp + valid, y + r * ldy + col);
      }
    }
  }
}

}  // namespace

void gemmInt8RowsAvx2(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy) {
  const int64_t panels = roundUp(layer.out, 16) / 16;
  const int64_t lda = layer.inPadded;
  int64_t m = 0;
  for (; m + 2 <= rows; m += 2) {
    for (int64_t nb = 0; nb < panels; ++nb) {
      avx2Panel<2>(layer, xq + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
    }
  }
  for (; m < rows; ++m) {
    for (int64_t nb = 0; nb < panels; ++nb) {
      avx2Panel<1>(layer, xq + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
    }
  }
}

}  // namespace ff::cpu
