// W8A8 GEMM on AMX: tdpbssd (s8 x s8 -> s32) over 16x64 activation tiles and 16-column weight
// panels, a 32x32 output block per pass (4 accumulator tiles, 2 A tiles, 2 B tiles), then the
// dequantization and bias fused into the store with AVX-512.
#include <immintrin.h>

#include <algorithm>

#include "amx_tiles.h"
#include "gemm_int8.h"

namespace ff::cpu {

namespace {

// acc: [16, 16] int32 of rows r0.., panel nb -> y rows r0.., columns nb*16.. (masked at out).
void dequantTile(const Int8Linear& layer, const int32_t* acc, const float* xs, int64_t rows,
                 int64_t nb, float* y, int64_t ldy) {
  const int64_t col = nb * 16;
  const int64_t valid = std::min<int64_t>(16, layer.out - col);
  const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
  const __m512 wScale = _mm512_loadu_ps(layer.scale.data() + col);
  const __m512 bias = _mm512_loadu_ps(layer.bias.data() + col);
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_loadu_si512(acc + r * 16));
    const __m512 s = _mm512_mul_ps(wScale, _mm512_set1_ps(xs[r]));
    _mm512_mask_storeu_ps(y + r * ldy + col, mask, _mm512_fmadd_ps(v, s, bias));
  }
}

}  // namespace

void gemmInt8RowsAmx(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                     float* y, int64_t ldy) {
  configureAmxTiles16x64();
  const int64_t kBlocks = layer.inPadded / 64;
  const int64_t panels = roundUp(layer.out, 16) / 16;
  const int64_t lda = layer.inPadded;
  alignas(64) int32_t acc[4][256];
  for (int64_t m = 0; m < rows; m += 32) {
    const bool twoRows = m + 16 < rows;
    const int8_t* a0 = xq + m * lda;
    const int8_t* a1 = a0 + 16 * lda;
    for (int64_t nb = 0; nb < panels; nb += 2) {
      const bool twoCols = nb + 1 < panels;
      const int8_t* b0 = layer.weights.data() + nb * kBlocks * 1024;
      const int8_t* b1 = b0 + kBlocks * 1024;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t kb = 0; kb < kBlocks; ++kb) {
        _tile_loadd(4, a0 + kb * 64, lda);
        _tile_loadd(6, b0 + kb * 1024, 64);
        _tile_dpbssd(0, 4, 6);
        if (twoCols) {
          _tile_loadd(7, b1 + kb * 1024, 64);
          _tile_dpbssd(1, 4, 7);
        }
        if (twoRows) {
          _tile_loadd(5, a1 + kb * 64, lda);
          _tile_dpbssd(2, 5, 6);
          if (twoCols) _tile_dpbssd(3, 5, 7);
        }
      }
      _tile_stored(0, acc[0], 64);
      _tile_stored(1, acc[1], 64);
      _tile_stored(2, acc[2], 64);
      _tile_stored(3, acc[3], 64);
      float* ym = y + m * ldy;
      dequantTile(layer, acc[0], xs + m, 16, nb, ym, ldy);
      if (twoCols) dequantTile(layer, acc[1], xs + m, 16, nb + 1, ym, ldy);
      if (twoRows) {
        dequantTile(layer, acc[2], xs + m + 16, 16, nb, ym + 16 * ldy, ldy);
        if (twoCols) dequantTile(layer, acc[3], xs + m + 16, 16, nb + 1, ym + 16 * ldy, ldy);
      }
    }
  }
}

}  // namespace ff::cpu
