// Row-wise and element-wise kernels of the model. Each has a naive double-precision reference
// (suffix _ref) that the tests use as the oracle. Rows are parallelised over the thread pool.
#pragma once
#include <cstdint>

namespace ff {

// x: [rows, dim] -> y: [rows, dim]; y = (x - mean) / sqrt(var + eps) * w + b (w, b may be null).
void layer_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps);
// layer_norm then modulate in one pass: y = LN(x) * (1 + scale) + shift (shift/scale may be null).
void layer_norm_modulate(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b,
                         const float* shift, const float* scale, float eps);
void layer_norm_ref(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps);
// x: [rows, dim] -> y; y = x / sqrt(mean(x^2) + eps) * w (w may be null). x may equal y.
void rms_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps);
void rms_norm_ref(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps);
// RMS norm over channels of a [C, S] planar tensor (one norm per position s): the VAE's norm.
void channel_rms_norm(const float* x, float* y, int64_t channels, int64_t positions, const float* w, float eps);
void channel_rms_norm_ref(const float* x, float* y, int64_t channels, int64_t positions, const float* w, float eps);

// In place, n elements.
void gelu_inplace(float* x, int64_t n);
void gelu_ref(float* x, int64_t n);
void silu_inplace(float* x, int64_t n);
void silu_ref(float* x, int64_t n);

// x: [rows, dim]; x = x * (1 + scale[dim]) + shift[dim]  (AdaLN modulation)
void modulate(float* x, int64_t rows, int64_t dim, const float* shift, const float* scale);
// x: [rows, dim] += gate[dim] * y[rows, dim]  (gate null: plain residual add)
void add_gated(float* x, const float* y, int64_t rows, int64_t dim, const float* gate);

// 3D rotary embedding of docs/MODEL.md. x: [tokens, heads, head_dim] with row stride `stride`
// (floats between tokens), rotated in place; token n sits at grid position (f, r, c) with
// n = (f * Fh + r) * Fw + c.
struct RopeGrid {
  int64_t frames, rows, cols;
};
void rope3d(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta);
// The same for tokens [n0, n1) only, on the calling thread (x still points at token 0).
void rope3d_rows(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta, int64_t n0,
                 int64_t n1);
void rope3d_ref(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta);

}  // namespace ff
