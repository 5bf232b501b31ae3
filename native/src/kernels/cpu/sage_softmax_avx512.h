#pragma once
// The online-softmax step shared by the AMX and VNNI sage kernels (include only from files built
// with AVX-512), on vmath.h's exp2Avx512.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attention_sage.h"
#include "kernels/cpu/vmath.h"

namespace ff::cpu {

// One query row's step of the online softmax over a chunk of keys.
// s: [cols] logits in base 2 (cols a multiple of 16, masked keys hold -inf); m, l: the running
// max and denominator. Hands each 16 p = 2^(s - m_new) to store(c, p) (c the first column) and
// returns the factor 2^(m_old - m_new) by which the row's output accumulator must be scaled.
template <class Store>
inline float onlineSoftmaxRowTo(const float* s, int64_t cols, float& m, float& l, Store&& store) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t c = 0; c < cols; c += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + c));
  const float mNew = std::fmax(m, _mm512_reduce_max_ps(vmax));
  const float corr = std::isinf(m) ? 0.0f : std::exp2(m - mNew);
  const __m512 vm = _mm512_set1_ps(mNew);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    const __m512 sv = _mm512_loadu_ps(s + c);
    const __mmask16 live = _mm512_cmp_ps_mask(sv, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
    const __m512 p = _mm512_maskz_mov_ps(live, exp2Avx512(_mm512_sub_ps(sv, vm)));
    vsum = _mm512_add_ps(vsum, p);
    store(c, p);
  }
  l = l * corr + _mm512_reduce_add_ps(vsum);
  m = mNew;
  return corr;
}

// The same writing p as fp32 to pOut (may alias s).
inline float onlineSoftmaxRow(float* s, int64_t cols, float& m, float& l, float* pOut) {
  return onlineSoftmaxRowTo(s, cols, m, l, [&](int64_t c, __m512 p) { _mm512_storeu_ps(pOut + c, p); });
}

}  // namespace ff::cpu
