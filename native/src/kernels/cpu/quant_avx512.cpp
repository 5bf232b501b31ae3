// AVX-512 per-row quantization; rounds exactly as quantizeRowsScalar (nearest even).
#include <immintrin.h>

#include <cstring>

#include "quant.h"

namespace ff::cpu {

void quantizeRowsAvx512(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q,
                        int64_t ldq, float* scale) {
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    int8_t* qr = q + r * ldq;
    // Four running maxima (max is exact, so any grouping gives the same bits) keep four
    // vmaxps chains in flight.
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
      m0 = _mm512_max_ps(m0, _mm512_and_ps(_mm512_loadu_ps(xr + c), signMask));
      m1 = _mm512_max_ps(m1, _mm512_and_ps(_mm512_loadu_ps(xr + c + 16), signMask));
      m2 = _mm512_max_ps(m2, _mm512_and_ps(_mm512_loadu_ps(xr + c + 32), signMask));
      m3 = _mm512_max_ps(m3, _mm512_and_ps(_mm512_loadu_ps(xr + c + 48), signMask));
    }
    for (; c + 16 <= cols; c += 16) {
      m0 = _mm512_max_ps(m0, _mm512_and_ps(_mm512_loadu_ps(xr + c), signMask));
    }
    __m512 vmax = _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3));
    if (c < cols) {
      const __mmask16 m = static_cast<__mmask16>((1u << (cols - c)) - 1);
      vmax = _mm512_max_ps(vmax, _mm512_and_ps(_mm512_maskz_loadu_ps(m, xr + c), signMask));
    }
    const float absMax = _mm512_reduce_max_ps(vmax);
    const __m512 inv = _mm512_set1_ps(int8InverseScaleForAbsMax(absMax));
    for (c = 0; c + 16 <= cols; c += 16) {
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xr + c), inv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + c), _mm512_cvtsepi32_epi8(v));
    }
    if (c < cols) {
      const __mmask16 m = static_cast<__mmask16>((1u << (cols - c)) - 1);
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), inv));
      _mm_mask_storeu_epi8(qr + c, m, _mm512_cvtsepi32_epi8(v));
    }
    std::memset(qr + cols, 0, static_cast<size_t>(ldq - cols));
    scale[r] = int8ScaleForAbsMax(absMax);
  }
}

float quantizeBlockAvx512(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                          int64_t ldq) {
  // Two passes over the block as the scalar quantizeBlock: the absolute maximum of x - shift,
  // then (x - shift) * inv rounded to nearest even (cvtps_epi32 in the default rounding mode;
  // |value| <= 127 so no saturation happens). Columns past cols are left as they are.
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  auto load = [&](int64_t r, int64_t c, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + r * ldx + c);
    return shift ? _mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, shift + c)) : v;
  };
  // One running maximum per row of four (max is exact, so the grouping changes no bit): four
  // vmaxps chains in flight.
  __m512 vmax[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (cols - c)) - 1);
      vmax[0] = _mm512_max_ps(vmax[0], _mm512_and_ps(load(r, c, m), signMask));
      vmax[1] = _mm512_max_ps(vmax[1], _mm512_and_ps(load(r + 1, c, m), signMask));
      vmax[2] = _mm512_max_ps(vmax[2], _mm512_and_ps(load(r + 2, c, m), signMask));
      vmax[3] = _mm512_max_ps(vmax[3], _mm512_and_ps(load(r + 3, c, m), signMask));
    }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (cols - c)) - 1);
      vmax[0] = _mm512_max_ps(vmax[0], _mm512_and_ps(load(r, c, m), signMask));
    }
  const float absMax =
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(vmax[0], vmax[1]), _mm512_max_ps(vmax[2], vmax[3])));
  const __m512 inv = _mm512_set1_ps(int8InverseScaleForAbsMax(absMax));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (cols - c)) - 1);
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(load(r, c, m), inv));
      _mm_mask_storeu_epi8(q + r * ldq + c, m, _mm512_cvtsepi32_epi8(v));
    }
  return int8ScaleForAbsMax(absMax);
}

}  // namespace ff::cpu
