// Row kernels of ops.h compiled once per instruction set (ops.cpp for baseline x86-64,
// ops_avx2.cpp 8 lanes wide, ops_avx512.cpp 16 lanes wide). Reductions run in 16 independent
// lanes so they vectorise without reassociating flags, and the lanes meet in a fixed tree
// (tree_sum); each row is one pass to reduce and one to write.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/vmath.h"

// Internal linkage on purpose (see gemm_driver.h): each file compiles its own copy.
namespace ff::ops_detail {
namespace {

constexpr int64_t kLanes = 16;

// The 16 lane sums added pairwise (lane l + lane l + 8, then + 4, + 2, + 1): four dependent steps
// where adding them in order is fifteen, and the same bits in every build.
inline float tree_sum(float (&a)[kLanes]) {
  for (int64_t w = kLanes / 2; w >= 1; w /= 2)
    for (int64_t l = 0; l < w; ++l) a[l] += a[l + w];
  return a[0];
}

#if defined(__AVX512F__)
// AVX-512 rows of whole vectors: four vector accumulators per sum (one chain of adds per
// accumulator, so four in flight instead of one), met pairwise at the end.
inline float reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#endif

// sum of x[i] and of x[i]^2 over n values
inline void sums(const float* x, int64_t n, float& s1, float& s2) {
#if defined(__AVX512F__)
  if (n % 16 == 0) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16), v2 = _mm512_loadu_ps(x + i + 32),
                   v3 = _mm512_loadu_ps(x + i + 48);
      a0 = _mm512_add_ps(a0, v0);
      a1 = _mm512_add_ps(a1, v1);
      a2 = _mm512_add_ps(a2, v2);
      a3 = _mm512_add_ps(a3, v3);
      b0 = _mm512_fmadd_ps(v0, v0, b0);
      b1 = _mm512_fmadd_ps(v1, v1, b1);
      b2 = _mm512_fmadd_ps(v2, v2, b2);
      b3 = _mm512_fmadd_ps(v3, v3, b3);
    }
    for (; i < n; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      a0 = _mm512_add_ps(a0, v);
      b0 = _mm512_fmadd_ps(v, v, b0);
    }
    s1 = reduce4(a0, a1, a2, a3);
    s2 = reduce4(b0, b1, b2, b3);
    return;
  }
#endif
  float a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      a[l] += x[i + l];
      b[l] += x[i + l] * x[i + l];
    }
  s1 = 0.f;
  s2 = 0.f;
  for (; i < n; ++i) {
    s1 += x[i];
    s2 += x[i] * x[i];
  }
  s1 += tree_sum(a);
  s2 += tree_sum(b);
}

// sum of (x[i] - mean)^2
inline float centered_squares(const float* x, int64_t n, float mean) {
#if defined(__AVX512F__)
  if (n % 16 == 0) {
    const __m512 m = _mm512_set1_ps(mean);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), m), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), m),
                   d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), m), d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), m);
      a0 = _mm512_fmadd_ps(d0, d0, a0);
      a1 = _mm512_fmadd_ps(d1, d1, a1);
      a2 = _mm512_fmadd_ps(d2, d2, a2);
      a3 = _mm512_fmadd_ps(d3, d3, a3);
    }
    for (; i < n; i += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
      a0 = _mm512_fmadd_ps(d, d, a0);
    }
    return reduce4(a0, a1, a2, a3);
  }
#endif
  float a[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) a[l] += (x[i + l] - mean) * (x[i + l] - mean);
  float s = 0.f;
  for (; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  return s + tree_sum(a);
}

// y = ((x - mean) / sqrt(var + eps) * w + b) * (1 + scale) + shift; each of w, b, shift/scale
// may be null (shift and scale come together).
inline void layer_norm_row(const float* __restrict x, float* __restrict y, int64_t dim, const float* w, const float* b,
                           const float* shift, const float* scale, float eps) {
  float s1, s2;
  sums(x, dim, s1, s2);
  const float mean = s1 / float(dim);
  const float var = centered_squares(x, dim, mean) / float(dim);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < dim; ++i) {
    float v = (x[i] - mean) * inv;
    if (w) v *= w[i];
    if (b) v += b[i];
    if (scale) v = v * (1.0f + scale[i]) + shift[i];
    y[i] = v;
  }
}

inline void rms_norm_row(const float* x, float* y, int64_t dim, const float* w, float eps) {
  float s1, s2;
  sums(x, dim, s1, s2);
  const float inv = 1.0f / std::sqrt(s2 / float(dim) + eps);
  if (w)
    for (int64_t i = 0; i < dim; ++i) y[i] = x[i] * inv * w[i];
  else
    for (int64_t i = 0; i < dim; ++i) y[i] = x[i] * inv;
}

inline void add_gated_row(float* __restrict x, const float* __restrict y, int64_t dim, const float* gate) {
  if (gate)
    for (int64_t i = 0; i < dim; ++i) x[i] += gate[i] * y[i];
  else
    for (int64_t i = 0; i < dim; ++i) x[i] += y[i];
}

inline void layer_norm_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, const float* b,
                            const float* shift, const float* scale, float eps) {
  for (int64_t r = r0; r < r1; ++r) layer_norm_row(x + r * dim, y + r * dim, dim, w, b, shift, scale, eps);
}

inline void rms_norm_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps) {
  for (int64_t r = r0; r < r1; ++r) rms_norm_row(x + r * dim, y + r * dim, dim, w, eps);
}

inline void add_gated_rows(float* x, const float* y, int64_t r0, int64_t r1, int64_t dim, const float* gate) {
  for (int64_t r = r0; r < r1; ++r) add_gated_row(x + r * dim, y + r * dim, dim, gate);
}

// fn over x[0, n) a native vector at a time (vmath.h: the float loop does not vectorise), the tail
// as floats.
#ifdef __AVX512F__
using ActVec = Vec16f;
#else
using ActVec = Vec8f;
#endif
template <class Fn>
inline void activation_span(float* x, int64_t n, Fn fn) {
  constexpr int64_t kW = sizeof(ActVec) / sizeof(float);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    ActVec v;
    std::memcpy(&v, x + i, sizeof v);
    v = fn(v);
    std::memcpy(x + i, &v, sizeof v);
  }
  for (; i < n; ++i) x[i] = fn(x[i]);
}

inline void gelu_span(float* x, int64_t n) {
  activation_span(x, n, [](auto v) { return gelu_fast_t(v); });
}

inline void silu_span(float* x, int64_t n) {
  activation_span(x, n, [](auto v) { return silu_fast_t(v); });
}

}  // namespace
}  // namespace ff::ops_detail

// The entry points ops.cpp dispatches to, for one instruction-set build (SUFFIX: avx2, avx512).
#define FF_OPS_ENTRY_POINTS(SUFFIX)                                                                                    \
  void gelu_span_##SUFFIX(float* x, int64_t n) { ops_detail::gelu_span(x, n); }                                       \
  void silu_span_##SUFFIX(float* x, int64_t n) { ops_detail::silu_span(x, n); }                                       \
  void layer_norm_rows_##SUFFIX(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w,         \
                                const float* b, const float* shift, const float* scale, float eps) {                   \
    ops_detail::layer_norm_rows(x, y, r0, r1, dim, w, b, shift, scale, eps);                                           \
  }                                                                                                                    \
  void rms_norm_rows_##SUFFIX(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps) { \
    ops_detail::rms_norm_rows(x, y, r0, r1, dim, w, eps);                                                              \
  }                                                                                                                    \
  void add_gated_rows_##SUFFIX(float* x, const float* y, int64_t r0, int64_t r1, int64_t dim, const float* gate) {     \
    ops_detail::add_gated_rows(x, y, r0, r1, dim, gate);                                                               \
  }
