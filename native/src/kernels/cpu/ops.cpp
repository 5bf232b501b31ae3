#include "kernels/cpu/ops.h"

#include <cmath>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "kernels/cpu/ops_impl.h"
#include "kernels/cpu/vmath.h"

namespace ff {

// ops_avx2.cpp / ops_avx512.cpp: the same loops compiled 8 / 16 lanes wide (FF_OPS_ENTRY_POINTS).
#define FF_OPS_DECLARE(SUFFIX)                                                                                          \
  void gelu_span_##SUFFIX(float* x, int64_t n);                                                                        \
  void silu_span_##SUFFIX(float* x, int64_t n);                                                                        \
  void layer_norm_rows_##SUFFIX(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w,         \
                                const float* b, const float* shift, const float* scale, float eps);                    \
  void rms_norm_rows_##SUFFIX(const float* x, float* y, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps); \
  void add_gated_rows_##SUFFIX(float* x, const float* y, int64_t r0, int64_t r1, int64_t dim, const float* gate);
FF_OPS_DECLARE(avx2)
FF_OPS_DECLARE(avx512)
#undef FF_OPS_DECLARE

namespace {

// The widest build this CPU runs, chosen once.
struct RowOps {
  void (*gelu)(float*, int64_t);
  void (*silu)(float*, int64_t);
  void (*layerNorm)(const float*, float*, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                    const float*, float);
  void (*rmsNorm)(const float*, float*, int64_t, int64_t, int64_t, const float*, float);
  void (*addGated)(float*, const float*, int64_t, int64_t, int64_t, const float*);
};

const RowOps& row_ops() {
  static const RowOps ops = [] {
    if (variant_score(Variant::Avx512) > 0)
      return RowOps{gelu_span_avx512, silu_span_avx512, layer_norm_rows_avx512, rms_norm_rows_avx512, add_gated_rows_avx512};
    if (variant_score(Variant::Avx2) > 0)
      return RowOps{gelu_span_avx2, silu_span_avx2, layer_norm_rows_avx2, rms_norm_rows_avx2, add_gated_rows_avx2};
    return RowOps{ops_detail::gelu_span, ops_detail::silu_span, ops_detail::layer_norm_rows, ops_detail::rms_norm_rows,
                  ops_detail::add_gated_rows};
  }();
  return ops;
}

void rows_parallel(int64_t rows, int64_t dim, const std::function<void(int64_t, int64_t)>& fn) {
  ThreadPool::global().parallel_for(rows, fn, std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)));
}
}  // namespace

void layer_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps) {
  layer_norm_modulate(x, y, rows, dim, w, b, nullptr, nullptr, eps);
}

void layer_norm_modulate(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b,
                         const float* shift, const float* scale, float eps) {
  const auto fn = row_ops().layerNorm;
  rows_parallel(rows, dim, [&](int64_t r0, int64_t r1) { fn(x, y, r0, r1, dim, w, b, shift, scale, eps); });
}

void layer_norm_ref(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    double inv = 1.0 / std::sqrt(var / dim + eps);
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = float((x[r * dim + i] - mean) * inv * (w ? w[i] : 1.0) + (b ? b[i] : 0.0));
  }
}

void rms_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps) {
  const auto fn = row_ops().rmsNorm;
  rows_parallel(rows, dim, [&](int64_t r0, int64_t r1) { fn(x, y, r0, r1, dim, w, eps); });
}

void rms_norm_ref(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = float(x[r * dim + i] * inv * (w ? w[i] : 1.0));
  }
}

void channel_rms_norm(const float* x, float* y, int64_t channels, int64_t positions, const float* w, float eps) {
  constexpr int64_t kBlock = 256;
  ThreadPool::global().parallel_for((positions + kBlock - 1) / kBlock, [&](int64_t b0, int64_t b1) {
    std::vector<float> ss(kBlock);
    for (int64_t blk = b0; blk < b1; ++blk) {
      int64_t s0 = blk * kBlock, n = std::min(kBlock, positions - s0);
      std::fill(ss.begin(), ss.end(), 0.f);
      for (int64_t c = 0; c < channels; ++c) {
        const float* xc = x + c * positions + s0;
        for (int64_t s = 0; s < n; ++s) ss[s] += xc[s] * xc[s];
      }
      for (int64_t s = 0; s < n; ++s) ss[s] = 1.0f / std::sqrt(ss[s] / channels + eps);
      for (int64_t c = 0; c < channels; ++c) {
        const float* xc = x + c * positions + s0;
        float* yc = y + c * positions + s0;
        float wc = w ? w[c] : 1.0f;
        for (int64_t s = 0; s < n; ++s) yc[s] = xc[s] * ss[s] * wc;
      }
    }
  });
}

void channel_rms_norm_ref(const float* x, float* y, int64_t channels, int64_t positions, const float* w, float eps) {
  for (int64_t s = 0; s < positions; ++s) {
    double ss = 0;
    for (int64_t c = 0; c < channels; ++c) ss += double(x[c * positions + s]) * x[c * positions + s];
    double inv = 1.0 / std::sqrt(ss / channels + eps);
    for (int64_t c = 0; c < channels; ++c) y[c * positions + s] = float(x[c * positions + s] * inv * (w ? w[c] : 1.0));
  }
}

void gelu_inplace(float* x, int64_t n) {
  auto* span = row_ops().gelu;
  ThreadPool::global().parallel_for(n, [&](int64_t b, int64_t e) { span(x + b, e - b); }, 16384);
}

void gelu_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    x[i] = float(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
  }
}

void silu_inplace(float* x, int64_t n) {
  auto* span = row_ops().silu;
  ThreadPool::global().parallel_for(n, [&](int64_t b, int64_t e) { span(x + b, e - b); }, 16384);
}

void silu_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = float(double(x[i]) / (1.0 + std::exp(-double(x[i]))));
}

void modulate(float* x, int64_t rows, int64_t dim, const float* shift, const float* scale) {
  rows_parallel(rows, dim, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < dim; ++i) x[r * dim + i] = x[r * dim + i] * (1.0f + scale[i]) + shift[i];
  });
}

void add_gated(float* x, const float* y, int64_t rows, int64_t dim, const float* gate) {
  const auto fn = row_ops().addGated;
  rows_parallel(rows, dim, [&](int64_t r0, int64_t r1) { fn(x, y, r0, r1, dim, gate); });
}

namespace {

// Per part (time, row, column) of head_dim: channel offset, size, and which grid index drives it.
struct RopePart {
  int64_t offset, size, axis;
};
std::vector<RopePart> rope_parts(int64_t head_dim) {
  int64_t sixth = head_dim / 6;
  int64_t dh = 2 * sixth, dt = head_dim - 2 * dh;
  return {{0, dt, 0}, {dt, dh, 1}, {dt + dh, dh, 2}};
}

// Tokens [n0, n1) of x (x points at token 0).
template <class Real>
void rope3d_impl(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta, bool parallel,
                 int64_t n0, int64_t n1) {
  auto parts = rope_parts(head_dim);
  // cos/sin per (axis position, pair), shared by every token and head: one table per axis
  // [positions][pairs of that part]. Each thread keeps the tables of the last grid it saw (a
  // forward calls this per row chunk, layer and step with the same grid; building them takes
  // hundreds of pow, cos and sin calls).
  const int64_t extent[3] = {grid.frames, grid.rows, grid.cols};
  struct Tables {
    int64_t frames = -1, rows = -1, cols = -1, head_dim = -1;
    double theta = 0;
    std::vector<Real> cos_t[3], sin_t[3];
  };
  thread_local Tables tables;
  if (tables.frames != grid.frames || tables.rows != grid.rows || tables.cols != grid.cols ||
      tables.head_dim != head_dim || tables.theta != theta) {
    for (const RopePart& p : parts) {
      const int64_t pairs = p.size / 2;
      tables.cos_t[p.axis].assign(extent[p.axis] * pairs, Real(0));
      tables.sin_t[p.axis].assign(extent[p.axis] * pairs, Real(0));
      for (int64_t pos = 0; pos < extent[p.axis]; ++pos)
        for (int64_t j = 0; j < pairs; ++j) {
          Real angle = Real(pos) * Real(std::pow(theta, -2.0 * double(j) / double(p.size)));
          tables.cos_t[p.axis][pos * pairs + j] = std::cos(angle);
          tables.sin_t[p.axis][pos * pairs + j] = std::sin(angle);
        }
    }
    tables.frames = grid.frames;
    tables.rows = grid.rows;
    tables.cols = grid.cols;
    tables.head_dim = head_dim;
    tables.theta = theta;
  }
  const std::vector<Real>(&cos_t)[3] = tables.cos_t;
  const std::vector<Real>(&sin_t)[3] = tables.sin_t;
  auto body = [&](int64_t t0, int64_t t1) {
    std::vector<Real> cs(head_dim / 2), sn(head_dim / 2);
    for (int64_t n = t0; n < t1; ++n) {
      int64_t pos[3] = {n / (grid.rows * grid.cols), (n / grid.cols) % grid.rows, n % grid.cols};
      for (const RopePart& p : parts) {
        const int64_t pairs = p.size / 2;
        for (int64_t j = 0; j < pairs; ++j) {
          cs[p.offset / 2 + j] = cos_t[p.axis][pos[p.axis] * pairs + j];
          sn[p.offset / 2 + j] = sin_t[p.axis][pos[p.axis] * pairs + j];
        }
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + n * stride + h * head_dim;
        for (int64_t j = 0; j < head_dim / 2; ++j) {
          Real a = v[2 * j], b = v[2 * j + 1];
          v[2 * j] = float(a * cs[j] - b * sn[j]);
          v[2 * j + 1] = float(a * sn[j] + b * cs[j]);
        }
      }
    }
  };
  if (parallel) ThreadPool::global().parallel_for(n1 - n0, [&](int64_t a, int64_t b) { body(n0 + a, n0 + b); }, 64);
  else body(n0, n1);
}

}  // namespace

void rope3d(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta) {
  rope3d_impl<float>(x, stride, heads, head_dim, grid, theta, true, 0, grid.frames * grid.rows * grid.cols);
}

void rope3d_rows(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta, int64_t n0,
                 int64_t n1) {
  rope3d_impl<float>(x, stride, heads, head_dim, grid, theta, false, n0, n1);
}

void rope3d_ref(float* x, int64_t stride, int64_t heads, int64_t head_dim, RopeGrid grid, double theta) {
  rope3d_impl<double>(x, stride, heads, head_dim, grid, theta, false, 0, grid.frames * grid.rows * grid.cols);
}

}  // namespace ff
