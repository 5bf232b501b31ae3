// exp without libm's scalar call: branch-free round-to-nearest range reduction x = n ln2 + r,
// |r| <= ln2/2, degree-7 polynomial, 2^n built from the exponent bits. Relative error below 2e-7 on
// [-87, 88]; inputs are clamped there. Written once for float and GCC vector types (Vec8f, Vec16f):
// loops over floats do not vectorise with GCC 12, which threads the clamps' constant results into
// branches, so the loops that need it (the activations' spans in ops_impl.h, dense attention's and
// SLA's exponentials) run on vectors explicitly.
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ff {

using Vec8f = float __attribute__((vector_size(32)));
using Vec8i = int32_t __attribute__((vector_size(32)));
using Vec16f = float __attribute__((vector_size(64)));
using Vec16i = int32_t __attribute__((vector_size(64)));

namespace vmath_detail {
inline int32_t toBits(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline float fromBits(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline Vec8i toBits(Vec8f f) { return reinterpret_cast<Vec8i>(f); }
inline Vec8f fromBits(Vec8i i) { return reinterpret_cast<Vec8f>(i); }
inline Vec16i toBits(Vec16f f) { return reinterpret_cast<Vec16i>(f); }
inline Vec16f fromBits(Vec16i i) { return reinterpret_cast<Vec16f>(i); }
}  // namespace vmath_detail

template <class F>
inline F exp_fast_t(F x) {
  using vmath_detail::fromBits;
  using vmath_detail::toBits;
  const F zero{};
  x = x < -87.0f ? zero - 87.0f : x;
  x = x > 88.0f ? zero + 88.0f : x;
  const F t = x * 1.44269504088896341f;
  // Round to nearest with the 1.5 * 2^23 shifter (no float->int conversion branch); n is read
  // back from the shifted value's mantissa bits.
  const F shifted = t + 12582912.0f;
  const F nf = shifted - 12582912.0f;
  const auto n = toBits(shifted) - 0x4B400000;
  const F r = x - nf * 0.693145751953125f - nf * 1.42860682030941723e-6f;
  F p = zero + 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * fromBits((n + 127) << 23);
}

inline float exp_fast(float x) { return exp_fast_t(x); }

// 1 / d for the activations, d in [1, 1e30]. AVX-512 vectors take the 14-bit reciprocal estimate
// and one Newton step (within 2 ulp; a division costs about five times its issue slots there);
// floats and other builds divide.
template <class F>
inline F recip_t(F d) {
  return 1.0f / d;
}
#if defined(__AVX512F__)
inline Vec16f recip_t(Vec16f d) {
  __m512 x;
  std::memcpy(&x, &d, sizeof x);
  const __m512 r = _mm512_rcp14_ps(x);
  const __m512 y = _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
  Vec16f out;
  std::memcpy(&out, &y, sizeof out);
  return out;
}
#endif

// 2^f on |f| <= 0.5, highest power first (relative error below 3e-8): the exp2 polynomial of
// every vector build of the sage and SLA kernels and of the AVX-512 activations.
constexpr float kExp2Poly[7] = {1.5353362e-4f, 1.3398874e-3f, 9.6180540e-3f, 5.5503406e-2f,
                                2.4022650e-1f, 6.9314718e-1f, 1.0f};

#if defined(__AVX512F__)
// 2^x for -126 <= x <= 127 (below -126 it returns 2^-126): 2^n * 2^f with |f| <= 0.5, kExp2Poly,
// scaled by vscalefps (one instruction for the exponent, no integer shifts).
inline __m512 exp2Avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));
  return _mm512_scalef_ps(p, n);
}
#endif

// tanh-approximated GELU, the family's activation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// = x e / (e + 1) with e = exp(2u): no 1 + tanh(u) that cancels where gelu nears zero on the
// negative side, and finite at both ends with the clamps (e / (e + 1) -> 0 or 1).
template <class F>
inline F gelu_fast_t(F x) {
  const F u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  F e = exp_fast_t(2.0f * u);
  e = e > 1e30f ? F{} + 1e30f : e;  // e / (e + 1) is 1 in float long before; keeps 1 / (e + 1) normal
  return x * (e * recip_t(e + 1.0f));
}

#if defined(__AVX512F__)
// AVX-512 vectors: the same x e / (e + 1) as x / (1 + 2^t), t = -2 log2(e) u = -x (a + b x^2),
// on exp2Avx512 (about half the instructions of exp_fast_t's reduction, clamps and shifts).
// t is capped at 100 (x below about -9.2), where the result is x 2^-100 against a true gelu of
// about x e^-(t ln 2): both within 1e-30 |x| of zero.
inline Vec16f gelu_fast_t(Vec16f v) {
  constexpr float a = 2.0f * 0.7978845608028654f * 1.4426950408889634f;
  constexpr float b = a * 0.044715f;
  __m512 x;
  std::memcpy(&x, &v, sizeof x);
  const __m512 poly = _mm512_fmadd_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-b), _mm512_set1_ps(-a));
  const __m512 t = _mm512_min_ps(_mm512_mul_ps(x, poly), _mm512_set1_ps(100.0f));
  Vec16f d;
  const __m512 dv = _mm512_add_ps(exp2Avx512(t), _mm512_set1_ps(1.0f));
  std::memcpy(&d, &dv, sizeof d);
  return v * recip_t(d);
}
#endif

inline float gelu_fast(float x) { return gelu_fast_t(x); }

template <class F>
inline F silu_fast_t(F x) {
  F d = 1.0f + exp_fast_t(-x);
  d = d > 1e30f ? F{} + 1e30f : d;  // there x < -69, and silu(x) is below 1e-28 in magnitude either way
  return x * recip_t(d);
}

#if defined(__AVX512F__)
// AVX-512 vectors: x / (1 + 2^(-x log2(e))) on exp2Avx512, the exponent capped at 100 (x below
// -69: silu is then below 1e-28 in magnitude either way, as in silu_fast_t).
inline Vec16f silu_fast_t(Vec16f v) {
  __m512 x;
  std::memcpy(&x, &v, sizeof x);
  const __m512 t = _mm512_min_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.4426950408889634f)), _mm512_set1_ps(100.0f));
  Vec16f d;
  const __m512 dv = _mm512_add_ps(exp2Avx512(t), _mm512_set1_ps(1.0f));
  std::memcpy(&d, &dv, sizeof d);
  return v * recip_t(d);
}
#endif

inline float silu_fast(float x) { return silu_fast_t(x); }

}  // namespace ff
