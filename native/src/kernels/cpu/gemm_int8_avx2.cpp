// W8A8 GEMM on AVX2 (int8PanelDotAvx2 over the same 16-column panels as AMX), dequantization
// and bias fused into the store.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "gemm_int8.h"
#include "int8_panel_avx2.h"

namespace ff::cpu {

namespace {

template <int R>
void avx2Panel(const Int8Linear& layer, const int8_t* xq, const int8_t* xAbs, int64_t lda, const float* xs,
               int64_t nb, float* y, int64_t ldy) {
  __m256i sums[R][2];
  int8PanelDotAvx2<R>(xq, xAbs, lda, layer.weights.data() + nb * layer.inPadded * 16, layer.inPadded, sums);
  for (int half = 0; half < 2; ++half) {
    const int64_t col = nb * 16 + half * 8;
    if (col >= layer.out) break;
    const __m256 wScale = _mm256_loadu_ps(layer.scale.data() + col);
    const __m256 bias = _mm256_loadu_ps(layer.bias.data() + col);
    const int64_t valid = std::min<int64_t>(8, layer.out - col);
    for (int r = 0; r < R; ++r) {
      const __m256 s = _mm256_mul_ps(wScale, _mm256_set1_ps(xs[r]));
      const __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r][half]), s, bias);
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

// Rows in groups of 4 (then 2, then 1), each group against every panel; the group's magnitudes are
// formed once for all panels.
template <int R>
int64_t rowGroups(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t m, int64_t rows, float* y,
                  int64_t ldy, int8_t* xAbs) {
  const int64_t panels = roundUp(layer.out, 16) / 16;
  const int64_t lda = layer.inPadded;
  for (; m + R <= rows; m += R) {
    int8AbsAvx2(xq + m * lda, R * lda, xAbs);
    for (int64_t nb = 0; nb < panels; ++nb) avx2Panel<R>(layer, xq + m * lda, xAbs, lda, xs + m, nb, y + m * ldy, ldy);
  }
  return m;
}

}  // namespace

void gemmInt8RowsAvx2(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy) {
  thread_local std::vector<int8_t> xAbs;
  xAbs.resize(static_cast<size_t>(4 * layer.inPadded));
  int64_t m = rowGroups<4>(layer, xq, xs, 0, rows, y, ldy, xAbs.data());
  m = rowGroups<2>(layer, xq, xs, m, rows, y, ldy, xAbs.data());
  rowGroups<1>(layer, xq, xs, m, rows, y, ldy, xAbs.data());
}

}  // namespace ff::cpu
