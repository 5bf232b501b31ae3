#include "kernels/cpu/conv3d.h"

#include "core/cpu_features.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/gemm.h"

namespace ff {

namespace {

using Conv3dFn = void (*)(const Conv3dShape&, const float*, const float*, const float*, float*);

// The direct kernel of the widest instruction set the CPU has, or null.
Conv3dFn direct_kernel() {
  static const Conv3dFn fn = variant_score(Variant::Avx512) > 0 ? conv3d_direct_avx512
                             : variant_score(Variant::Avx2) > 0 ? conv3d_direct_avx2
                                                                : nullptr;
  return fn;
}

}  // namespace

bool conv3d_direct_available() { return direct_kernel() != nullptr; }

void conv3d(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (const Conv3dFn direct = direct_kernel()) return direct(s, x, w, bias, y);
  conv3d_im2col(s, x, w, bias, y);
}

void conv3d_im2col(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t hw = s.height * s.width, kvol = s.kt * s.kh * s.kw, K = s.in_channels * kvol;
  const int64_t ph = s.kh / 2, pw = s.kw / 2;
  AlignedBuffer cols = aligned_floats(size_t(hw * K));
  for (int64_t t = 0; t < s.frames; ++t) {
    // cols: [H*W, Ci*kt*kh*kw], column order (ci, dt, dy, dx) = the weight's flattening
    ThreadPool::global().parallel_for(s.height, [&](int64_t r0, int64_t r1) {
      for (int64_t oy = r0; oy < r1; ++oy)
        for (int64_t ox = 0; ox < s.width; ++ox) {
          float* col = cols.get() + (oy * s.width + ox) * K;
          for (int64_t ci = 0; ci < s.in_channels; ++ci)
            for (int64_t dt = 0; dt < s.kt; ++dt) {
              int64_t it = t + dt - (s.kt - 1);
              for (int64_t dy = 0; dy < s.kh; ++dy) {
                int64_t iy = oy + dy - ph;
                for (int64_t dx = 0; dx < s.kw; ++dx) {
                  int64_t ix = ox + dx - pw;
                  bool inside = it >= 0 && iy >= 0 && iy < s.height && ix >= 0 && ix < s.width;
                  *col++ = inside ? x[((ci * s.frames + it) * s.height + iy) * s.width + ix] : 0.f;
                }
              }
            }
        }
    }, 1);
    GemmArgs g;
    g.M = s.out_channels;
    g.N = hw;
    g.K = K;
    g.A = w;
    g.lda = K;
    g.B = cols.get();
    g.ldb = K;
    g.C = y + t * hw;
    g.ldc = s.frames * hw;
    gemm_nt(g);
    if (bias)
      for (int64_t co = 0; co < s.out_channels; ++co) {
        float* yc = y + (co * s.frames + t) * hw;
        for (int64_t i = 0; i < hw; ++i) yc[i] += bias[co];
      }
  }
}

void conv3d_ref(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t ph = s.kh / 2, pw = s.kw / 2;
  for (int64_t co = 0; co < s.out_channels; ++co)
    for (int64_t t = 0; t < s.frames; ++t)
      for (int64_t oy = 0; oy < s.height; ++oy)
        for (int64_t ox = 0; ox < s.width; ++ox) {
          double acc = bias ? bias[co] : 0.0;
          for (int64_t ci = 0; ci < s.in_channels; ++ci)
            for (int64_t dt = 0; dt < s.kt; ++dt) {
              int64_t it = t + dt - (s.kt - 1);
              if (it < 0) continue;
              for (int64_t dy = 0; dy < s.kh; ++dy) {
                int64_t iy = oy + dy - ph;
                if (iy < 0 || iy >= s.height) continue;
                for (int64_t dx = 0; dx < s.kw; ++dx) {
                  int64_t ix = ox + dx - pw;
                  if (ix < 0 || ix >= s.width) continue;
                  acc += double(x[((ci * s.frames + it) * s.height + iy) * s.width + ix]) *
                         w[(((co * s.in_channels + ci) * s.kt + dt) * s.kh + dy) * s.kw + dx];
                }
              }
            }
          y[((co * s.frames + t) * s.height + oy) * s.width + ox] = float(acc);
        }
}

}  // namespace ff
