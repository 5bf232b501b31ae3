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

constexpr int64_t kVnniRowBlockBytes = 24 * 1024;

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

// Every row block of panels [nb, nb + P): the panels' weights (P * 16 columns over the whole k) are
// read from L1 for all the rows instead of being streamed again for each block of four rows.
template <int P>
void vnniPanels(const Int8Linear& layer, const uint8_t* xu, int64_t lda, const float* xs, int64_t rows,
                int64_t nb, float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 4 <= rows; m += 4) vnniBlock<4, P>(layer, xu + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
  switch (rows - m) {
    case 3:
      vnniBlock<3, P>(layer, xu + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
      break;
    case 2:
      vnniBlock<2, P>(layer, xu + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
      break;
    case 1:
      vnniBlock<1, P>(layer, xu + m * lda, lda, xs + m, nb, y + m * ldy, ldy);
      break;
    default:
      break;
  }
}

}  // namespace

void gemmInt8RowsVnni(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy) {
  const int64_t lda = layer.inPadded;
  // Row blocks of about 24 KB of activations, kept in L1 while every group of panels walks them
  // (a group's weights, up to 64 columns over the whole k, are read once per row block instead of
  // once per four rows). The activations go in as q + 128.
  const int64_t block = std::max<int64_t>(4, std::min<int64_t>(rows, kVnniRowBlockBytes / lda) / 4 * 4);
  thread_local std::vector<uint8_t> xu;
  if (xu.size() < static_cast<size_t>(block * lda)) xu.resize(static_cast<size_t>(block * lda));
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t panels = roundUp(layer.out, 16) / 16;
  for (int64_t m0 = 0; m0 < rows; m0 += block) {
    const int64_t n = std::min(block, rows - m0);
    const int8_t* src = xq + m0 * lda;
    for (int64_t i = 0; i < n * lda; i += 64) {  // lda is a multiple of 64
      _mm512_storeu_si512(xu.data() + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), flip));
    }
    float* ym = y + m0 * ldy;
    int64_t nb = 0;
    for (; nb + 4 <= panels; nb += 4) vnniPanels<4>(layer, xu.data(), lda, xs + m0, n, nb, ym, ldy);
    for (; nb < panels; ++nb) vnniPanels<1>(layer, xu.data(), lda, xs + m0, n, nb, ym, ldy);
  }
}

}  // namespace ff::cpu
