// W8A8 GEMM on AVX-512 VNNI. vpdpbusd multiplies unsigned by signed bytes, so activations go in
// as q + 128 (u8) and the product is corrected by 128 * (sum of the weight row): exact.
// Register block: 4 rows x 4 panels (64 columns) = 16 int32 accumulators.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "gemm_int8.h"
#include "vnni_dot4x4.h"

namespace ff::cpu {

namespace {

template <int R, int P>
void vnniBlock(const Int8Linear& layer, const uint8_t* xu, int64_t lda, const float* xs,
               int64_t nb, float* y, int64_t ldy) {
  const int64_t kBlocks = layer.inPadded / 64;
  __m512i acc[R][P];
  const int8_t* w = layer.weights.data() + nb * kBlocks * 1024;
  if constexpr (R == 4 && P == 4) {
    // Panel p's 64-byte rows run contiguously over the k blocks: one k4 walk of kBlocks * 16.
    dotBlock4x4(xu, lda, w, kBlocks * 1024, kBlocks * 16, acc);
  } else {
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_si512();
    for (int64_t kb = 0; kb < kBlocks; ++kb) {
      for (int64_t k4 = 0; k4 < 16; ++k4) {
        __m512i b[P];
        for (int p = 0; p < P; ++p) {
          b[p] = _mm512_loadu_si512(w + (p * kBlocks + kb) * 1024 + k4 * 64);
        }
        const int64_t k = kb * 64 + k4 * 4;
        for (int r = 0; r < R; ++r) {
          int32_t word;
          __builtin_memcpy(&word, xu + r * lda + k, 4);
          const __m512i a = _mm512_set1_epi32(word);
          for (int p = 0; p < P; ++p) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], a, b[p]);
        }
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    const int64_t col = (nb + p) * 16;
    const int64_t valid = std::min<int64_t>(16, layer.out - col);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512i offset =
        _mm512_slli_epi32(_mm512_loadu_si512(layer.colSum.data() + col), 7);  // 128 * sum
    const __m512 wScale = _mm512_loadu_ps(layer.scale.data() + col);
    const __m512 bias = _mm512_loadu_ps(layer.bias.data() + col);
    for (int r = 0; r < R; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][p], offset));
      const __m512 s = _mm512_mul_ps(wScale, _mm512_set1_ps(xs[r]));
      _mm512_mask_storeu_ps(y + r * ldy + col, mask, _mm512_fmadd_ps(v, s, bias));
    }
  }
}

template <int R>
void vnniRows(const Int8Linear& layer, const uint8_t* xu, int64_t lda, const float* xs, float* y,
              int64_t ldy) {
  const int64_t panels = roundUp(layer.out, 16) / 16;
  int64_t nb = 0;
  for (; nb + 4 <= panels; nb += 4) vnniBlock<R, 4>(layer, xu, lda, xs, nb, y, ldy);
  for (; nb < panels; ++nb) vnniBlock<R, 1>(layer, xu, lda, xs, nb, y, ldy);
}

}  // namespace

void gemmInt8RowsVnni(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy) {
  const int64_t lda = layer.inPadded;
  std::vector<uint8_t> xu(static_cast<size_t>(4 * lda));
  int64_t m = 0;
  for (; m < rows; m += 4) {
    const int64_t r = std::min<int64_t>(4, rows - m);
    for (int64_t i = 0; i < r * lda; ++i) {
      xu[static_cast<size_t>(i)] = static_cast<uint8_t>(xq[m * lda + i] ^ 0x80);
    }
    const float* s = xs + m;
    float* ym = y + m * ldy;
    switch (r) {
      case 4:
        vnniRows<4>(layer, xu.data(), lda, s, ym, ldy);
        break;
      case 3:
        vnniRows<3>(layer, xu.data(), lda, s, ym, ldy);
        break;
      case 2:
        vnniRows<2>(layer, xu.data(), lda, s, ym, ldy);
        break;
      default:
        vnniRows<1>(layer, xu.data(), lda, s, ym, ldy);
        break;
    }
  }
}

}  // namespace ff::cpu
