// Direct 3D convolution for AVX-512 (conv3d.h): the input is copied once into a zero-padded
// buffer (kt - 1 frames in front, kh/2 rows and kw/2 columns each side, rows padded to a whole
// number of 16-float vectors), so the inner loop is branch-free. Each task computes one output
// row (t, y) for a block of CB output channels, NV 16-wide column vectors at a time: every input
// vector loaded feeds CB fused multiply-adds and every broadcast weight NV of them. Threads split
// (frame, row, channel block).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/conv3d.h"

namespace ff {

namespace {

struct Padded {
  int64_t tp, hp, wp;  // padded frames, rows, row length
  const float* x;
};

// wt: weights of one channel block as [ci][tap][CB] so the broadcasts of a tap are adjacent.
template <int CB, int NV>
inline void row_block(const Conv3dShape& s, const Padded& p, const float* wt, const float* bias, int64_t co0, int64_t t,
                      int64_t oy, int64_t col0, __mmask16 last_mask, float* y) {
  __m512 acc[CB][NV];
  for (int c = 0; c < CB; ++c) {
    const __m512 b = _mm512_set1_ps(bias ? bias[co0 + c] : 0.f);
    for (int v = 0; v < NV; ++v) acc[c][v] = b;
  }
  const int64_t taps = s.kt * s.kh * s.kw;
  for (int64_t ci = 0; ci < s.in_channels; ++ci) {
    const float* wc = wt + ci * taps * CB;
    for (int64_t dt = 0; dt < s.kt; ++dt)
      for (int64_t dy = 0; dy < s.kh; ++dy) {
        const float* xr = p.x + ((ci * p.tp + t + dt) * p.hp + oy + dy) * p.wp + col0;
        for (int64_t dx = 0; dx < s.kw; ++dx, wc += CB) {
          __m512 xv[NV];
          for (int v = 0; v < NV; ++v) xv[v] = _mm512_loadu_ps(xr + dx + 16 * v);
          for (int c = 0; c < CB; ++c) {
            const __m512 wv = _mm512_set1_ps(wc[c]);
            for (int v = 0; v < NV; ++v) acc[c][v] = _mm512_fmadd_ps(wv, xv[v], acc[c][v]);
          }
        }
      }
  }
  const int64_t hw = s.height * s.width;
  for (int c = 0; c < CB; ++c) {
    float* yr = y + ((co0 + c) * s.frames + t) * hw + oy * s.width + col0;
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(yr + 16 * v, acc[c][v]);
    _mm512_mask_storeu_ps(yr + 16 * (NV - 1), last_mask, acc[c][NV - 1]);
  }
}

template <int CB>
void row_all_columns(const Conv3dShape& s, const Padded& p, const float* wt, const float* bias, int64_t co0, int64_t t,
                     int64_t oy, float* y) {
  int64_t col = 0;
  for (; col + 32 <= s.width; col += 32) row_block<CB, 2>(s, p, wt, bias, co0, t, oy, col, 0xFFFF, y);
  for (; col < s.width; col += 16) {
    const int64_t left = s.width - col;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    row_block<CB, 1>(s, p, wt, bias, co0, t, oy, col, mask, y);
  }
}

using RowFn = void (*)(const Conv3dShape&, const Padded&, const float*, const float*, int64_t, int64_t, int64_t, float*);

RowFn row_fn(int cb) {
  switch (cb) {
    case 1: return row_all_columns<1>;
    case 2: return row_all_columns<2>;
    case 3: return row_all_columns<3>;
    case 4: return row_all_columns<4>;
    case 5: return row_all_columns<5>;
    case 6: return row_all_columns<6>;
    case 7: return row_all_columns<7>;
    default: return row_all_columns<8>;
  }
}

}  // namespace

void conv3d_direct_avx512(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  constexpr int64_t kCb = 8;
  const int64_t ph = s.kh / 2, pw = s.kw / 2, taps = s.kt * s.kh * s.kw;
  Padded p;
  p.tp = s.frames + s.kt - 1;
  p.hp = s.height + s.kh - 1;
  p.wp = (s.width + s.kw - 1 + 15) / 16 * 16 + 16;  // loads of the last vector stay inside
  AlignedBuffer xp = aligned_floats(size_t(s.in_channels * p.tp * p.hp * p.wp));
  p.x = xp.get();
  ThreadPool::global().parallel_for(s.in_channels * p.tp, [&](int64_t a, int64_t b) {
    for (int64_t plane = a; plane < b; ++plane) {
      const int64_t ci = plane / p.tp, ft = plane % p.tp, it = ft - (s.kt - 1);
      float* dst = xp.get() + plane * p.hp * p.wp;
      std::memset(dst, 0, sizeof(float) * p.hp * p.wp);
      if (it < 0) continue;
      for (int64_t iy = 0; iy < s.height; ++iy)
        std::memcpy(dst + (iy + ph) * p.wp + pw, x + ((ci * s.frames + it) * s.height + iy) * s.width, sizeof(float) * s.width);
    }
  });
  // Weights per channel block, [block][ci][tap][CB] (the last block may be narrower).
  const int64_t blocks = (s.out_channels + kCb - 1) / kCb;
  AlignedBuffer wt = aligned_floats(size_t(blocks * s.in_channels * taps * kCb));
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t co0 = blk * kCb, cb = std::min(kCb, s.out_channels - co0);
    float* dst = wt.get() + blk * s.in_channels * taps * kCb;
    for (int64_t ci = 0; ci < s.in_channels; ++ci)
      for (int64_t tap = 0; tap < taps; ++tap)
        for (int64_t c = 0; c < cb; ++c) dst[(ci * taps + tap) * cb + c] = w[((co0 + c) * s.in_channels + ci) * taps + tap];
  }
  const int64_t rows = s.frames * s.height;
  ThreadPool::global().parallel_for(blocks * rows, [&](int64_t a, int64_t b) {
    for (int64_t item = a; item < b; ++item) {
      const int64_t blk = item / rows, r = item % rows, t = r / s.height, oy = r % s.height;
      const int64_t co0 = blk * kCb, cb = std::min(kCb, s.out_channels - co0);
      row_fn(int(cb))(s, p, wt.get() + blk * s.in_channels * taps * kCb, bias, co0, t, oy, y);
    }
  });
}

}  // namespace ff
