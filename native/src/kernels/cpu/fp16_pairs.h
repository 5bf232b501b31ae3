#pragma once
// The 4 x 4 fp16 FMA block shared by Sage's fp16 P.V and SLA's fp16 linear products (include
// only from files built with AVX512-FP16): right-hand rows packed in pairs (two rows' values of a
// column side by side in 32-lane groups of 16 columns), left-hand values read two at a time as
// one 32-bit broadcast, so each broadcast (a plain load) feeds four vfmadd231ph.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ff::cpu {
namespace {  // internal linkage: each including file has its own copy

inline __m512h broadcastPair(const uint16_t* p) {
  int32_t bits;
  std::memcpy(&bits, p, 4);
  return _mm512_castsi512_ph(_mm512_set1_epi32(bits));
}

// The 32 fp16 lanes of a pair-form accumulator as fp32: lanes 0..15 in lo, 16..31 in hi.
inline void pairLanesToFp32(__m512h acc, __m512& lo, __m512& hi) {
  const __m512i bits = _mm512_castph_si512(acc);
  lo = _mm512_cvtph_ps(_mm512_castsi512_si256(bits));
  hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(bits, 1));
}

// The 16 column sums of a pair-form group held as fp32 in lo (lanes 0..15) and hi (16..31):
// column t = lane 2t + lane 2t + 1.
inline __m512 addPairLanes(__m512 lo, __m512 hi) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  return _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
}

// out[j][g] = sum over pairs i < pairs of x_j[2i, 2i + 1] (broadcast) times the 32 lanes of group
// g of pair i (rows + i * rowStride + 32 g): four left-hand rows x0..x3, four 16-column groups.
// Each lane sums `pairs` products in fp16. The 16 accumulators are named variables (an array of
// them is not kept in registers).
inline void fp16PairBlock4x4(const uint16_t* x0, const uint16_t* x1, const uint16_t* x2, const uint16_t* x3,
                             const uint16_t* rows, int64_t rowStride, int64_t pairs, __m512h (&out)[4][4]) {
  __m512h a00 = _mm512_setzero_ph(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
          a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
#define FF_PAIR_ROW(x, c0, c1, c2, c3)        \
  {                                            \
    const __m512h p = broadcastPair(x + 2 * i); \
    c0 = _mm512_fmadd_ph(p, v0, c0);           \
    c1 = _mm512_fmadd_ph(p, v1, c1);           \
    c2 = _mm512_fmadd_ph(p, v2, c2);           \
    c3 = _mm512_fmadd_ph(p, v3, c3);           \
  }
  for (int64_t i = 0; i < pairs; ++i, rows += rowStride) {
    const __m512h v0 = _mm512_loadu_ph(rows), v1 = _mm512_loadu_ph(rows + 32), v2 = _mm512_loadu_ph(rows + 64),
                  v3 = _mm512_loadu_ph(rows + 96);
    FF_PAIR_ROW(x0, a00, a01, a02, a03)
    FF_PAIR_ROW(x1, a10, a11, a12, a13)
    FF_PAIR_ROW(x2, a20, a21, a22, a23)
    FF_PAIR_ROW(x3, a30, a31, a32, a33)
  }
#undef FF_PAIR_ROW
  out[0][0] = a00, out[0][1] = a01, out[0][2] = a02, out[0][3] = a03;
  out[1][0] = a10, out[1][1] = a11, out[1][2] = a12, out[1][3] = a13;
  out[2][0] = a20, out[2][1] = a21, out[2][2] = a22, out[2][3] = a23;
  out[3][0] = a30, out[3][1] = a31, out[3][2] = a32, out[3][3] = a33;
}

}  // namespace
}  // namespace ff::cpu
