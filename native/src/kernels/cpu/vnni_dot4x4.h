#pragma once
// The 4 x 4 vpdpbusd register block shared by the VNNI W8A8 GEMM and the VNNI Sage scores
// (include only from files built with AVX-512 VNNI).
#include <immintrin.h>

#include <cstdint>

namespace ff::cpu {
namespace {  // internal linkage: each including file (all VNNI builds) has its own copy

// acc += dot4(u8 lanes of w, s8 lanes of b) per int32 lane, accumulating in acc's register. GCC
// compiles _mm512_dpbusd_epi32 in a loop with a register copy into a fresh destination and back
// (or a stack spill) around each instruction, as many copies as multiply-adds; the asm names the
// accumulator as the destination.
inline void dpbusd(__m512i& acc, __m512i w, __m512i b) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(b)); }

// out[i][t] = sum over k4 < k4Count of dot4(a[i * lda + 4 * k4, +4), column group of tile t):
// a holds four rows of u8 values, tile t of the signed operand starts at b + t * tileStride and
// takes one 64-byte row (16 int32 lanes x 4 bytes) per k4. Each tile load feeds four rows and
// each row word four tiles; the 16 accumulators are named variables because GCC keeps an array
// of them only partly in registers and copies (or spills) it around every vpdpbusd.
inline void dotBlock4x4(const uint8_t* a, int64_t lda, const int8_t* b, int64_t tileStride, int64_t k4Count,
                        __m512i (&out)[4][4]) {
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00,
          c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
#define FF_DOT_ROW(i, x0, x1, x2, x3)                  \
  {                                                    \
    int32_t word;                                      \
    __builtin_memcpy(&word, a + (i) * lda + k4 * 4, 4); \
    const __m512i w = _mm512_set1_epi32(word);         \
    dpbusd(x0, w, b0);                                 \
    dpbusd(x1, w, b1);                                 \
    dpbusd(x2, w, b2);                                 \
    dpbusd(x3, w, b3);                                 \
  }
  for (int64_t k4 = 0; k4 < k4Count; ++k4) {
    const __m512i b0 = _mm512_loadu_si512(b + k4 * 64);
    const __m512i b1 = _mm512_loadu_si512(b + tileStride + k4 * 64);
    const __m512i b2 = _mm512_loadu_si512(b + 2 * tileStride + k4 * 64);
    const __m512i b3 = _mm512_loadu_si512(b + 3 * tileStride + k4 * 64);
    FF_DOT_ROW(0, c00, c01, c02, c03)
    FF_DOT_ROW(1, c10, c11, c12, c13)
    FF_DOT_ROW(2, c20, c21, c22, c23)
    FF_DOT_ROW(3, c30, c31, c32, c33)
  }
#undef FF_DOT_ROW
  out[0][0] = c00, out[0][1] = c01, out[0][2] = c02, out[0][3] = c03;
  out[1][0] = c10, out[1][1] = c11, out[1][2] = c12, out[1][3] = c13;
  out[2][0] = c20, out[2][1] = c21, out[2][2] = c22, out[2][3] = c23;
  out[3][0] = c30, out[3][1] = c31, out[3][2] = c32, out[3][3] = c33;
}

}  // namespace
}  // namespace ff::cpu
