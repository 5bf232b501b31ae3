// The direct 3D convolution (conv3d.h), compiled once per instruction set: conv3d_avx512.cpp and
// conv3d_avx2.cpp each instantiate it with their vector operations. The input is copied once into
// a zero-padded buffer (kt - 1 frames in front, kh/2 rows and kw/2 columns each side, rows padded
// to a whole number of vectors plus one), so the inner loop is branch-free. The weights are
// repacked per block of CB output channels as [ci][tap][CB] so the broadcasts of a tap are
// adjacent. Each task computes one output row (t, y) for one channel block, NV column vectors at a
// time: every input vector loaded feeds CB fused multiply-adds and every broadcast weight NV of
// them. Threads split (block, frame, row).
//
// The vector operations are a struct Vec with
//   static constexpr int64_t kLanes;    // floats per vector
//   static constexpr int64_t kBlock;    // output channels per block (CB at most)
//   static constexpr bool kUnrollTaps;  // specialise the tap loop for kernel widths 3 and 1
//   using V, Mask;                      // a vector, and a set of its lanes
//   static V set1(float); static V load(const float*);  // unaligned
//   static V fmadd(V a, V b, V c);                       // a * b + c
//   static void store(float*, V); static void store(float*, Mask, V);  // the second: lanes under the mask
//   static Mask all(); static Mask first(int64_t n);    // every lane; lanes 0 .. n - 1 (n < kLanes)
#pragma once
#include <algorithm>
#include <cstring>
#include <utility>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/conv3d.h"

// Internal linkage on purpose (see gemm_driver.h): each file compiles its own copy.
namespace ff::conv3d_detail {
namespace {

constexpr int kNv = 2;  // column vectors per block of a full row

struct Padded {
  int64_t tp, hp, wp;  // padded frames, rows, row length
  const float* x;
};

// Output row (t, oy) of channels co0 .. co0 + CB - 1, columns col0 .. col0 + NV * kLanes - 1; the
// last vector is stored under last_mask. wt: the block's weights [ci][tap][CB]; bias may be null.
// KW is the kernel width, or 0 to read it from s.
template <class Vec, int CB, int NV, int KW>
inline void row_block(const Conv3dShape& s, const Padded& p, const float* wt, const float* bias, int64_t co0, int64_t t,
                      int64_t oy, int64_t col0, typename Vec::Mask last_mask, float* y) {
  using V = typename Vec::V;
  constexpr int64_t L = Vec::kLanes;
  V acc[CB][NV];
  for (int c = 0; c < CB; ++c) {
    const V b = Vec::set1(bias ? bias[co0 + c] : 0.f);
    for (int v = 0; v < NV; ++v) acc[c][v] = b;
  }
  const int64_t kw = KW ? KW : s.kw, taps = s.kt * s.kh * kw;
  for (int64_t ci = 0; ci < s.in_channels; ++ci) {
    const float* wc = wt + ci * taps * CB;
    for (int64_t dt = 0; dt < s.kt; ++dt)
      for (int64_t dy = 0; dy < s.kh; ++dy) {
        const float* xr = p.x + ((ci * p.tp + t + dt) * p.hp + oy + dy) * p.wp + col0;
        for (int64_t dx = 0; dx < kw; ++dx, wc += CB) {
          V xv[NV];
          for (int v = 0; v < NV; ++v) xv[v] = Vec::load(xr + dx + L * v);
          for (int c = 0; c < CB; ++c) {
            const V wv = Vec::set1(wc[c]);
            for (int v = 0; v < NV; ++v) acc[c][v] = Vec::fmadd(wv, xv[v], acc[c][v]);
          }
        }
      }
  }
  const int64_t hw = s.height * s.width;
  for (int c = 0; c < CB; ++c) {
    float* yr = y + ((co0 + c) * s.frames + t) * hw + oy * s.width + col0;
    for (int v = 0; v < NV - 1; ++v) Vec::store(yr + L * v, acc[c][v]);
    Vec::store(yr + L * (NV - 1), last_mask, acc[c][NV - 1]);
  }
}

// Every column of output row (t, oy): kNv vectors at a time, then one at a time.
template <class Vec, int CB, int KW>
void row_columns(const Conv3dShape& s, const Padded& p, const float* wt, const float* bias, int64_t co0, int64_t t,
                 int64_t oy, float* y) {
  constexpr int64_t L = Vec::kLanes;
  int64_t col = 0;
  for (; col + kNv * L <= s.width; col += kNv * L)
    row_block<Vec, CB, kNv, KW>(s, p, wt, bias, co0, t, oy, col, Vec::all(), y);
  for (; col < s.width; col += L) {
    const int64_t left = s.width - col;
    row_block<Vec, CB, 1, KW>(s, p, wt, bias, co0, t, oy, col, left >= L ? Vec::all() : Vec::first(left), y);
  }
}

template <class Vec, int CB>
void row(const Conv3dShape& s, const Padded& p, const float* wt, const float* bias, int64_t co0, int64_t t, int64_t oy,
         float* y) {
  if constexpr (Vec::kUnrollTaps) {
    if (s.kw == 3) return row_columns<Vec, CB, 3>(s, p, wt, bias, co0, t, oy, y);
    if (s.kw == 1) return row_columns<Vec, CB, 1>(s, p, wt, bias, co0, t, oy, y);
  }
  row_columns<Vec, CB, 0>(s, p, wt, bias, co0, t, oy, y);
}

using RowFn = void (*)(const Conv3dShape&, const Padded&, const float*, const float*, int64_t, int64_t, int64_t, float*);

// row<Vec, cb> for cb in 1 .. Vec::kBlock.
template <class Vec, int... I>
RowFn row_fn(int cb, std::integer_sequence<int, I...>) {
  static constexpr RowFn table[] = {&row<Vec, I + 1>...};
  return table[cb - 1];
}

template <class Vec>
void conv3d_direct(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  constexpr int64_t kCb = Vec::kBlock, kLanes = Vec::kLanes;
  const int64_t ph = s.kh / 2, pw = s.kw / 2, taps = s.kt * s.kh * s.kw;
  Padded p;
  p.tp = s.frames + s.kt - 1;
  p.hp = s.height + s.kh - 1;
  p.wp = (s.width + s.kw - 1 + kLanes - 1) / kLanes * kLanes + kLanes;  // loads of the last vector stay inside
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
      const RowFn row_cb = row_fn<Vec>(int(cb), std::make_integer_sequence<int, int(kCb)>());
      row_cb(s, p, wt.get() + blk * s.in_channels * taps * kCb, bias, co0, t, oy, y);
    }
  });
}

}  // namespace
}  // namespace ff::conv3d_detail
