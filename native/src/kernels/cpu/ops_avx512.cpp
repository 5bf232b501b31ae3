// ops.h's row kernels (ops_impl.h) and activations (vmath.h) compiled for AVX-512: the same code
// as the baseline build, vectorised 16 lanes wide here. ops.cpp calls these when the CPU has
// AVX-512.
#include <cstdint>

#include "kernels/cpu/ops_impl.h"
#include "kernels/cpu/vmath.h"

namespace ff {

void gelu_span_avx512(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_fast(x[i]);
}

void silu_span_avx512(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = silu_fast(x[i]);
}

void layer_norm_rows_avx512(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, const float* b,
                            const float* shift, const float* scale, float eps) {
  for (int64_t r = r0; r < r1; ++r) ops_detail::layer_norm_row(x + r * dim, y + r * dim, dim, w, b, shift, scale, eps);
}

void rms_norm_rows_avx512(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps) {
  for (int64_t r = r0; r < r1; ++r) ops_detail::rms_norm_row(x + r * dim, y + r * dim, dim, w, eps);
}

void add_gated_rows_avx512(float* x, const float* y, int64_t r0, int64_t r1, int64_t dim, const float* gate) {
  for (int64_t r = r0; r < r1; ++r) ops_detail::add_gated_row(x + r * dim, y + r * dim, dim, gate);
}

}  // namespace ff
