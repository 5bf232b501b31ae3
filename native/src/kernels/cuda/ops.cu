#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"

namespace ff::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kRowThreads = 256;

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduction over the warp; every lane gets the result.
template <class Op>
__device__ __forceinline__ float warpReduce(float v, Op op) {
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Reduction over the CTA (kRowThreads threads); every thread gets the result.
template <class Op>
__device__ float blockReduce(float v, float* red, Op op) {
  v = warpReduce(v, op);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = red[0];
  for (int w = 1; w < kRowThreads / 32; ++w) t = op(t, red[w]);
  return t;
}
__device__ float blockSum(float v, float* red) { return blockReduce(v, red, SumOp{}); }

// Symmetric int8 as the CPU engine's quantizeRowsScalar: inverse scale 127 / absmax (0 for a zero
// row), round to nearest even; the scale stored is absmax / 127.
__device__ __forceinline__ float int8Inverse(float absMax) { return absMax > 0.0f ? 127.0f / absMax : 0.0f; }
__device__ __forceinline__ int8_t toInt8(float v, float inv) { return static_cast<int8_t>(__float2int_rn(v * inv)); }

// One element of the layer norm + modulation, rounded to bf16: ((x - mean) * rstd * w + b) *
// (1 + scale) + shift, every operation rounded on its own (no contraction), so that both kernels
// below give the same bits. An absent w, b, scale or shift takes its identity (1, -0, 0, -0;
// adding -0 leaves every value, -0 included, as it was), which equals skipping the step.
__device__ __forceinline__ bf16 lnModulated(float x, float mean, float rstd, float w, float b, float scale, float shift) {
  float v = __fmul_rn(__fsub_rn(x, mean), rstd);
  v = __fadd_rn(__fmul_rn(v, w), b);
  v = __fadd_rn(__fmul_rn(v, __fadd_rn(1.0f, scale)), shift);
  return __float2bfloat16_rn(v);
}

// The residual stream's element types: fp32, or bf16 (ditForward's bf16 residual stream); in(p, i)
// reads element i as fp32.
__device__ __forceinline__ float in(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float in(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float4 unpackBf16x4(uint2 u);

// The general case: one CTA per row. With q, the bf16-rounded row is recomputed after its absmax
// is known. In: the rows' type (fp32 or bf16).
template <class In>
__global__ void __launch_bounds__(kRowThreads) layerNormModulateKernel(const In* x, bf16* y, int8_t* q, float* qScale,
                                                                      int64_t dim, const float* w, const float* b,
                                                                      const float* shift, const float* scale, float eps) {
  __shared__ float red[kRowThreads / 32];
  const In* xr = x + blockIdx.x * dim;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) s += in(xr, i);
  const float mean = blockSum(s, red) / static_cast<float>(dim);
  float s2 = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) {
    const float d = in(xr, i) - mean;
    s2 += d * d;
  }
  const float rstd = rsqrtf(blockSum(s2, red) / static_cast<float>(dim) + eps);
  auto value = [&](int64_t i) {
    return lnModulated(in(xr, i), mean, rstd, w ? w[i] : 1.0f, b ? b[i] : -0.0f, scale ? scale[i] : 0.0f, shift ? shift[i] : -0.0f);
  };
  float absMax = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) {
    const bf16 v = value(i);
    if (y) y[blockIdx.x * dim + i] = v;
    absMax = fmaxf(absMax, fabsf(__bfloat162float(v)));
  }
  if (!q) return;
  absMax = blockReduce(absMax, red, MaxOp{});
  const float inv = int8Inverse(absMax);
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) q[blockIdx.x * dim + i] = toInt8(__bfloat162float(value(i)), inv);
  if (threadIdx.x == 0) qScale[blockIdx.x] = absMax / 127.0f;
}

// dim = 128 * V (V <= 16): one warp per row, kRowThreads / 32 rows per CTA. Lane l holds float4
// k * 32 + l of the row for k < V in registers, the statistics are warp shuffles, and the
// bf16-rounded outputs stay in those registers for the int8 pass.
constexpr int kLnRowsPerCta = kRowThreads / 32;
// Four outputs packed for one 8-byte (bf16) or 4-byte (int8) store; element 0 in the low bits.
__device__ __forceinline__ uint2 packBf16x4(bf16 e0, bf16 e1, bf16 e2, bf16 e3) {
  return make_uint2(__bfloat16_as_ushort(e0) | static_cast<uint32_t>(__bfloat16_as_ushort(e1)) << 16,
                    __bfloat16_as_ushort(e2) | static_cast<uint32_t>(__bfloat16_as_ushort(e3)) << 16);
}
__device__ __forceinline__ uint32_t packInt8x4(float4 v, float inv) {
  auto byte = [&](float e, int at) { return static_cast<uint32_t>(static_cast<uint8_t>(toInt8(e, inv))) << at; };
  return byte(v.x, 0) | byte(v.y, 8) | byte(v.z, 16) | byte(v.w, 24);
}

template <int V, class In>
__global__ void __launch_bounds__(kRowThreads) layerNormModulateWarpKernel(const In* x, bf16* y, int8_t* q, float* qScale,
                                                                          int64_t rows, const float* w, const float* b,
                                                                          const float* shift, const float* scale, float eps) {
  constexpr int dim = 128 * V;
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kLnRowsPerCta + (threadIdx.x >> 5);
  if (row >= rows) return;
  // fp32 rows are held as float4, bf16 rows as their raw 8 bytes, unpacked where used; after the
  // modulation each holds the bf16-rounded outputs.
  constexpr bool kRaw = std::is_same_v<In, bf16>;
  using Held = std::conditional_t<kRaw, uint2, float4>;
  const Held* xr = reinterpret_cast<const Held*>(x + row * dim);
  Held h[V];
#pragma unroll
  for (int k = 0; k < V; ++k) h[k] = xr[k * 32 + lane];
  auto value = [&](int k) {
    if constexpr (kRaw) return unpackBf16x4(h[k]);
    else return h[k];
  };
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const float4 v = value(k);
    s += v.x + v.y + v.z + v.w;
  }
  const float mean = warpReduce(s, SumOp{}) / static_cast<float>(dim);
  float s2 = 0.0f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const float4 v = value(k);
    const float d0 = v.x - mean, d1 = v.y - mean, d2 = v.z - mean, d3 = v.w - mean;
    s2 += d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
  }
  const float rstd = rsqrtf(warpReduce(s2, SumOp{}) / static_cast<float>(dim) + eps);
  const float4 one = make_float4(1.0f, 1.0f, 1.0f, 1.0f), zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f),
               negZero = make_float4(-0.0f, -0.0f, -0.0f, -0.0f);
  auto at = [](const float* p, int c, float4 identity) { return p ? __ldg(reinterpret_cast<const float4*>(p) + c) : identity; };
  float absMax = 0.0f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const int c = k * 32 + lane;
    const float4 wk = at(w, c, one), bk = at(b, c, negZero), sck = at(scale, c, zero), shk = at(shift, c, negZero);
    const float4 v = value(k);
    const bf16 e0 = lnModulated(v.x, mean, rstd, wk.x, bk.x, sck.x, shk.x);
    const bf16 e1 = lnModulated(v.y, mean, rstd, wk.y, bk.y, sck.y, shk.y);
    const bf16 e2 = lnModulated(v.z, mean, rstd, wk.z, bk.z, sck.z, shk.z);
    const bf16 e3 = lnModulated(v.w, mean, rstd, wk.w, bk.w, sck.w, shk.w);
    const uint2 packed = packBf16x4(e0, e1, e2, e3);
    if (y) reinterpret_cast<uint2*>(y + row * dim)[c] = packed;
    if constexpr (kRaw) h[k] = packed;
    else h[k] = make_float4(__bfloat162float(e0), __bfloat162float(e1), __bfloat162float(e2), __bfloat162float(e3));
    const float4 r = value(k);
    absMax = fmaxf(absMax, fmaxf(fmaxf(fabsf(r.x), fabsf(r.y)), fmaxf(fabsf(r.z), fabsf(r.w))));
  }
  if (!q) return;
  absMax = warpReduce(absMax, MaxOp{});
  const float inv = int8Inverse(absMax);
  uint32_t* qr = reinterpret_cast<uint32_t*>(q + row * dim);
#pragma unroll
  for (int k = 0; k < V; ++k) qr[k * 32 + lane] = packInt8x4(value(k), inv);
  if (lane == 0) qScale[row] = absMax / 127.0f;
}

// Per-row symmetric quantization, one CTA per row: scale = max|row| / F::kMax, q = F::encode(x,
// F::kMax / max|row|) (0 for a zero row). Int8Rows: round to nearest even; E4m3Rows (the FFN's FP8
// weights): e4m3 rounded to nearest, saturating.
struct Int8Rows {
  using T = int8_t;
  static constexpr float kMax = 127.0f;
  __device__ static T encode(float v, float inv) { return toInt8(v, inv); }
};
struct E4m3Rows {
  using T = uint8_t;
  static constexpr float kMax = 448.0f;
  __device__ static T encode(float v, float inv) { return __nv_cvt_float_to_fp8(v * inv, __NV_SATFINITE, __NV_E4M3); }
};
template <class F>
__global__ void __launch_bounds__(kRowThreads) quantizeRowsKernel(const bf16* x, int64_t cols, int64_t ld, typename F::T* q,
                                                                 float* scale) {
  __shared__ float red[kRowThreads / 32];
  const bf16* xr = x + blockIdx.x * ld;
  float absMax = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += kRowThreads) absMax = fmaxf(absMax, fabsf(__bfloat162float(xr[i])));
  absMax = blockReduce(absMax, red, MaxOp{});
  const float inv = absMax > 0.0f ? F::kMax / absMax : 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += kRowThreads) q[blockIdx.x * cols + i] = F::encode(__bfloat162float(xr[i]), inv);
  if (threadIdx.x == 0) scale[blockIdx.x] = absMax / F::kMax;
}

// The biased row is rounded to bf16 before the statistics, as a bf16 linear layer's output is.
__global__ void __launch_bounds__(kRowThreads) rmsNormKernel(bf16* x, int64_t dim, int64_t ld, const float* bias,
                                                            const float* w, float eps) {
  __shared__ float red[kRowThreads / 32];
  bf16* xr = x + blockIdx.x * ld;
  auto at = [&](int64_t i) {
    return bias ? __bfloat162float(__float2bfloat16_rn(__bfloat162float(xr[i]) + bias[i])) : __bfloat162float(xr[i]);
  };
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) {
    const float v = at(i);
    s += v * v;
  }
  const float r = rsqrtf(blockSum(s, red) / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) xr[i] = __float2bfloat16_rn(at(i) * r * (w ? w[i] : 1.0f));
}

__device__ __forceinline__ __nv_bfloat162 rotatePair(__nv_bfloat162 e, float cs, float sn) {
  const float2 f = __bfloat1622float2(e);
  return __floats2bfloat162_rn(f.x * cs - f.y * sn, f.x * sn + f.y * cs);
}

// Four bf16-rounded channels 4i..4i+3 of token row `row` rotated by rope3dTable's pairs (two pairs,
// one float4 of the table: hd / 4 float4 per token), rounding as rope3dApply.
__device__ __forceinline__ uint2 ropeBf16x4(uint2 u, const float4* table, int64_t row, int64_t i, int64_t hd) {
  const float4 t = __ldg(table + row * (hd / 4) + (4 * i % hd) / 4);
  __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&u.x), hi = *reinterpret_cast<const __nv_bfloat162*>(&u.y);
  lo = rotatePair(lo, t.x, t.y);
  hi = rotatePair(hi, t.z, t.w);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}

// One thread per (token, channel pair): table[n * hd / 2 + pr] = (cos, sin) of the pair's angle.
__global__ void rope3dTableKernel(float2* table, int64_t hd, int64_t rows, int64_t cols, int64_t tokens, double log2Theta) {
  const int64_t pairs = hd / 2;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= tokens * pairs) return;
  const int64_t n = i / pairs, pr = i % pairs;
  const int64_t sixth = hd / 6, dt = hd - 4 * sixth, dh = 2 * sixth;
  int64_t ch = 2 * pr, pos, dp, base;
  if (ch < dt) {
    pos = n / (rows * cols), dp = dt, base = 0;
  } else if (ch < dt + dh) {
    pos = (n / cols) % rows, dp = dh, base = dt;
  } else {
    pos = n % cols, dp = dh, base = dt + dh;
  }
  const int64_t j = (ch - base) / 2;
  const double angle = static_cast<double>(pos) * exp2(-log2Theta * (2.0 * j) / static_cast<double>(dp));
  double sn, cs;
  sincos(angle, &sn, &cs);
  table[i] = make_float2(static_cast<float>(cs), static_cast<float>(sn));
}

// One thread per 8 channels (4 pairs, 16 bytes) of one head of one token; blockIdx.y picks q (0)
// or k (1). A token's vectors are numbered h * vecsPerHead + c8, so vector v starts at channel 8 v.
__global__ void rope3dApplyKernel(bf16* q, bf16* k, int64_t ld, uint32_t vecsPerToken, uint32_t vecsPerHead, uint32_t vecs,
                                  const float4* __restrict__ table) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= vecs) return;
  const uint32_t n = i / vecsPerToken, v = i % vecsPerToken, c8 = v % vecsPerHead;
  uint4* p = reinterpret_cast<uint4*>((blockIdx.y ? k : q) + n * ld + v * 8);
  const float4* t = table + static_cast<size_t>(n) * vecsPerHead * 2 + c8 * 2;  // a token's hd / 2 pairs, 2 per float4
  const float4 t0 = __ldg(t), t1 = __ldg(t + 1);
  uint4 raw = *p;
  auto* e = reinterpret_cast<__nv_bfloat162*>(&raw);
  e[0] = rotatePair(e[0], t0.x, t0.y);
  e[1] = rotatePair(e[1], t0.z, t0.w);
  e[2] = rotatePair(e[2], t1.x, t1.y);
  e[3] = rotatePair(e[3], t1.z, t1.w);
  *p = raw;
}

__device__ __forceinline__ float geluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// Four floats as bf16 in 8 bytes, and back.
__device__ __forceinline__ uint2 packBf16x4(float4 v) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}
__device__ __forceinline__ float4 unpackBf16x4(uint2 u) {
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
template <class F>
__device__ __forceinline__ float4 map4(float4 v, F f) {
  return make_float4(f(v.x), f(v.y), f(v.z), f(v.w));
}

// Column-wise elementwise ops over [rows, dim]: one CTA per row, each thread V consecutive
// elements per step (V = 4, 16-byte fp32 and 8-byte bf16 accesses, when dim % 4 == 0 and the
// pointers allow; else 1). The functors' apply<V>(row, i) handles elements V i .. V i + V - 1.
template <int V>
__device__ __forceinline__ void loadV(const bf16* p, int64_t i, float (&v)[V]) {
  if constexpr (V == 4) {
    const float4 f = unpackBf16x4(reinterpret_cast<const uint2*>(p)[i]);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
    v[0] = __bfloat162float(p[i]);
  }
}
template <int V>
__device__ __forceinline__ void loadV(const float* p, int64_t i, float (&v)[V], float absent) {
  if (p == nullptr) {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = absent;
  } else if constexpr (V == 4) {
    const float4 f = reinterpret_cast<const float4*>(p)[i];
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
    v[0] = p[i];
  }
}
template <int V>
__device__ __forceinline__ void storeV(bf16* p, int64_t i, const float (&v)[V]) {
  if constexpr (V == 4) {
    reinterpret_cast<uint2*>(p)[i] = packBf16x4(make_float4(v[0], v[1], v[2], v[3]));
  } else {
    p[i] = __float2bfloat16_rn(v[0]);
  }
}
template <int V>
__device__ __forceinline__ void storeV(float* p, int64_t i, const float (&v)[V]) {
  if constexpr (V == 4) reinterpret_cast<float4*>(p)[i] = make_float4(v[0], v[1], v[2], v[3]);
  else p[i] = v[0];
}

// y += bias, then gelu_tanh when Gelu (bf16 y; bias may be null)
template <bool Gelu>
struct BiasOp {
  bf16* y;
  const float* bias;
  int64_t dim;
  template <int V>
  __device__ void apply(int64_t r, int64_t i) const {
    float v[V], b[V];
    loadV<V>(y + r * dim, i, v);
    loadV<V>(bias, i, b, 0.0f);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = Gelu ? geluTanh(v[k] + b[k]) : v[k] + b[k];
    storeV<V>(y + r * dim, i, v);
  }
};
// x += gate * (y + bias) (fp32 x, bf16 y; gate and bias may be null)
struct AddGatedOp {
  float* x;
  const bf16* y;
  const float* bias;
  const float* gate;
  int64_t dim;
  template <int V>
  __device__ void apply(int64_t r, int64_t i) const {
    float xv[V], yv[V], b[V], g[V];
    loadV<V>(x + r * dim, i, xv, 0.0f);
    loadV<V>(y + r * dim, i, yv);
    loadV<V>(bias, i, b, 0.0f);
    loadV<V>(gate, i, g, 1.0f);
#pragma unroll
    for (int k = 0; k < V; ++k) xv[k] += g[k] * (yv[k] + b[k]);
    storeV<V>(x + r * dim, i, xv);
  }
};

template <int V, class Op>
__global__ void columnsKernel(Op op, int64_t perRow) {
  const int64_t r = blockIdx.x;
  for (int64_t i = threadIdx.x; i < perRow; i += blockDim.x) op.template apply<V>(r, i);
}

// One CTA per row of the int32 product, four columns per thread and step (16-byte loads of the
// product, the scales, bias, gate and residual; cols % 4 == 0, checked by dequantInt8); see
// DequantArgs.

// quantizeRowsKernel eight channels at a time (cols, ld % 8 == 0, x 16-byte and q 8-byte
// aligned): 16-byte loads, 8-byte stores, and up to kQuantHeld vectors per thread (10240 channels)
// held in registers between the absmax and the store; a longer row reads its rest twice.
constexpr int kQuantHeld = 5;
__device__ __forceinline__ float absMax8(uint4 u) {
  const float4 a = unpackBf16x4(make_uint2(u.x, u.y)), b = unpackBf16x4(make_uint2(u.z, u.w));
  return fmaxf(fmaxf(fmaxf(fabsf(a.x), fabsf(a.y)), fmaxf(fabsf(a.z), fabsf(a.w))),
               fmaxf(fmaxf(fabsf(b.x), fabsf(b.y)), fmaxf(fabsf(b.z), fabsf(b.w))));
}
__device__ __forceinline__ uint2 quant8(uint4 u, float inv) {
  const float4 a = unpackBf16x4(make_uint2(u.x, u.y)), b = unpackBf16x4(make_uint2(u.z, u.w));
  auto byte = [&](float e, int at) { return static_cast<uint32_t>(static_cast<uint8_t>(toInt8(e, inv))) << at; };
  return make_uint2(byte(a.x, 0) | byte(a.y, 8) | byte(a.z, 16) | byte(a.w, 24),
                    byte(b.x, 0) | byte(b.y, 8) | byte(b.z, 16) | byte(b.w, 24));
}
__global__ void __launch_bounds__(kRowThreads) quantizeRowsVecKernel(const bf16* x, int64_t cols, int64_t ld, int8_t* q,
                                                                    float* scale) {
  __shared__ float red[kRowThreads / 32];
  const int64_t r = blockIdx.x, nv = cols / 8, t = threadIdx.x;
  const auto* xr = reinterpret_cast<const uint4*>(x + r * ld);
  auto* qr = reinterpret_cast<uint2*>(q + r * cols);
  uint4 held[kQuantHeld];
  float absMax = 0.0f;
#pragma unroll
  for (int j = 0; j < kQuantHeld; ++j)
    if (const int64_t i = t + j * kRowThreads; i < nv) {
      held[j] = xr[i];
      absMax = fmaxf(absMax, absMax8(held[j]));
    }
  for (int64_t i = t + kQuantHeld * kRowThreads; i < nv; i += kRowThreads) absMax = fmaxf(absMax, absMax8(xr[i]));
  absMax = blockReduce(absMax, red, MaxOp{});
  const float inv = int8Inverse(absMax);
#pragma unroll
  for (int j = 0; j < kQuantHeld; ++j)
    if (const int64_t i = t + j * kRowThreads; i < nv) qr[i] = quant8(held[j], inv);
  for (int64_t i = t + kQuantHeld * kRowThreads; i < nv; i += kRowThreads) qr[i] = quant8(xr[i], inv);
  if (t == 0) scale[r] = absMax / 127.0f;
}

// rmsNormKernel four channels at a time (dim, ld % 4 == 0, x 8-byte aligned), with the rotation of
// rope3dApply fused into the store when table is non-null. The second pass re-reads the row (its
// 8-byte pieces are still in L1) instead of holding it.
__global__ void __launch_bounds__(kRowThreads) rmsNormVecKernel(bf16* x, int64_t dim, int64_t ld, const float* bias,
                                                               const float* w, float eps, const float4* table, int64_t hd) {
  __shared__ float red[kRowThreads / 32];
  const int64_t r = blockIdx.x, nv = dim / 4;
  auto* row = reinterpret_cast<uint2*>(x + r * ld);
  const auto* bs = reinterpret_cast<const float4*>(bias);
  const auto* ws = reinterpret_cast<const float4*>(w);
  auto at = [&](int64_t i) {
    float4 v = unpackBf16x4(row[i]);
    if (bs) {
      const float4 b = bs[i];
      v = unpackBf16x4(packBf16x4(make_float4(v.x + b.x, v.y + b.y, v.z + b.z, v.w + b.w)));
    }
    return v;
  };
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
    const float4 v = at(i);
    s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float rs = rsqrtf(blockSum(s, red) / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
    const float4 v = at(i), g = ws ? ws[i] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
    const uint2 y = packBf16x4(make_float4(v.x * rs * g.x, v.y * rs * g.y, v.z * rs * g.z, v.w * rs * g.w));
    row[i] = table ? ropeBf16x4(y, table, r, i, hd) : y;
  }
}

// rmsNormVecKernel for dim = 128 * V (V <= 16): one warp per row as the layer norm's warp kernel,
// the row's raw bf16 held in registers (read once), the statistics by warp shuffles.
template <int V>
__global__ void __launch_bounds__(kRowThreads) rmsNormWarpKernel(bf16* x, int64_t rows, int64_t ld, const float* bias,
                                                                const float* w, float eps, const float4* table, int64_t hd) {
  constexpr int dim = 128 * V;
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kLnRowsPerCta + (threadIdx.x >> 5);
  if (r >= rows) return;
  auto* row = reinterpret_cast<uint2*>(x + r * ld);
  const auto* bs = reinterpret_cast<const float4*>(bias);
  const auto* ws = reinterpret_cast<const float4*>(w);
  uint2 h[V];
#pragma unroll
  for (int k = 0; k < V; ++k) h[k] = row[k * 32 + lane];
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    float4 v = unpackBf16x4(h[k]);
    if (bs) {
      const float4 b = __ldg(bs + k * 32 + lane);
      h[k] = packBf16x4(make_float4(v.x + b.x, v.y + b.y, v.z + b.z, v.w + b.w));
      v = unpackBf16x4(h[k]);
    }
    s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float rs = rsqrtf(warpReduce(s, SumOp{}) / static_cast<float>(dim) + eps);
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const int i = k * 32 + lane;
    const float4 v = unpackBf16x4(h[k]), g = ws ? __ldg(ws + i) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
    const uint2 y = packBf16x4(make_float4(v.x * rs * g.x, v.y * rs * g.y, v.z * rs * g.z, v.w * rs * g.w));
    row[i] = table ? ropeBf16x4(y, table, r, i, hd) : y;
  }
}

template <DequantKind K>
__global__ void __launch_bounds__(kRowThreads) dequantKernel(DequantArgs a, int64_t cols, bool stash) {
  __shared__ float red[kRowThreads / 32];
  const int64_t r = blockIdx.x, nv = cols / 4;
  const auto* acc = reinterpret_cast<const int4*>(a.acc + r * cols);
  const auto* ws = reinterpret_cast<const float4*>(a.wScale);
  const auto* bs = reinterpret_cast<const float4*>(a.bias);
  const float xs = a.xScale[r];
  // v = xScale * wScale * acc (+ bias), in that order, for columns 4i..4i+3.
  auto value = [&](int64_t i) {
    const int4 c = acc[i];
    const float4 w = ws[i];
    float4 v = make_float4(xs * w.x * static_cast<float>(c.x), xs * w.y * static_cast<float>(c.y),
                           xs * w.z * static_cast<float>(c.z), xs * w.w * static_cast<float>(c.w));
    if (bs) {
      const float4 b = bs[i];
      v = make_float4(v.x + b.x, v.y + b.y, v.z + b.z, v.w + b.w);
    }
    return v;
  };
  auto* y = reinterpret_cast<uint2*>(static_cast<bf16*>(a.y) + r * a.ldy);
  if constexpr (K == DequantKind::Bf16) {
    for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) y[i] = packBf16x4(value(i));
  } else if constexpr (K == DequantKind::Residual) {
    auto* res = reinterpret_cast<float4*>(a.residual + r * cols);
    const auto* gs = reinterpret_cast<const float4*>(a.gate);
    for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
      const float4 v = value(i), g = gs ? gs[i] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
      float4 o = res[i];
      o = make_float4(o.x + g.x * v.x, o.y + g.y * v.y, o.z + g.z * v.z, o.w + g.w * v.w);
      res[i] = o;
    }
  } else {
    // Two passes over the row (statistics, then output): the first keeps the bf16 row in shared
    // memory when the launch gave room for it (stash; each thread reads back only its own
    // columns), else the second recomputes it.
    extern __shared__ uint2 row[];
    auto rounded = [&](int64_t i) {
      const float4 v = value(i);
      return packBf16x4(K == DequantKind::Gelu ? map4(v, [](float x) { return geluTanh(x); }) : v);
    };
    auto first = [&](int64_t i) {
      const uint2 e = rounded(i);
      if (stash) row[i] = e;
      return e;
    };
    auto second = [&](int64_t i) { return unpackBf16x4(stash ? row[i] : rounded(i)); };
    if constexpr (K == DequantKind::RmsNorm) {
      float s = 0.0f;
      for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
        const float4 v = unpackBf16x4(first(i));
        s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      }
      const float rs = rsqrtf(blockSum(s, red) / static_cast<float>(cols) + a.eps);
      const auto* nw = reinterpret_cast<const float4*>(a.normW);
      for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
        const float4 v = second(i), w = nw ? nw[i] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        const uint2 o = packBf16x4(make_float4(v.x * rs * w.x, v.y * rs * w.y, v.z * rs * w.z, v.w * rs * w.w));
        y[i] = a.rope ? ropeBf16x4(o, reinterpret_cast<const float4*>(a.rope), r, i, a.ropeHeadDim) : o;
      }
    } else {
      float absMax = 0.0f;
      for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
        const uint2 g = first(i);
        if (a.y) y[i] = g;
        const float4 v = unpackBf16x4(g);
        absMax = fmaxf(absMax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
      }
      if (!a.q) return;
      absMax = blockReduce(absMax, red, MaxOp{});
      const float inv = int8Inverse(absMax);
      auto* q = reinterpret_cast<uint32_t*>(a.q + r * cols);
      auto byte = [&](float e, int at) { return static_cast<uint32_t>(static_cast<uint8_t>(toInt8(e, inv))) << at; };
      for (int64_t i = threadIdx.x; i < nv; i += kRowThreads) {
        const float4 v = second(i);
        q[i] = byte(v.x, 0) | byte(v.y, 8) | byte(v.z, 16) | byte(v.w, 24);
      }
      if (threadIdx.x == 0) a.qScale[r] = absMax / 127.0f;
    }
  }
}

unsigned gridFor(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <int V, class In>
void launchLayerNormWarp(const In* x, bf16* y, int8_t* q, float* qScale, int64_t rows, const float* w, const float* b,
                         const float* shift, const float* scale, float eps, CUstream_st* stream) {
  const auto grid = static_cast<unsigned>((rows + kLnRowsPerCta - 1) / kLnRowsPerCta);
  layerNormModulateWarpKernel<V, In><<<grid, kRowThreads, 0, stream>>>(x, y, q, qScale, rows, w, b, shift, scale, eps);
}
template <class In>
using LayerNormWarpLaunch = decltype(&launchLayerNormWarp<1, In>);
template <class In, int... V>
constexpr std::array<LayerNormWarpLaunch<In>, sizeof...(V)> layerNormWarpLaunches(std::integer_sequence<int, V...>) {
  return {&launchLayerNormWarp<V + 1, In>...};
}
constexpr int kLnWarpMaxDim = 2048;

template <int V>
void launchRmsNormWarp(bf16* x, int64_t rows, int64_t ld, const float* bias, const float* w, float eps, const float4* table,
                       int64_t hd, CUstream_st* stream) {
  const auto grid = static_cast<unsigned>((rows + kLnRowsPerCta - 1) / kLnRowsPerCta);
  rmsNormWarpKernel<V><<<grid, kRowThreads, 0, stream>>>(x, rows, ld, bias, w, eps, table, hd);
}
using RmsNormWarpLaunch = decltype(&launchRmsNormWarp<1>);
template <int... V>
constexpr std::array<RmsNormWarpLaunch, sizeof...(V)> rmsNormWarpLaunches(std::integer_sequence<int, V...>) {
  return {&launchRmsNormWarp<V + 1>...};
}

// Throws unless the rotation's 16-byte vectors fit x: [tokens, heads, headDim] with token stride
// ld, and their count the kernel's 32-bit index.
void checkRopeLayout(const char* who, const void* x, int64_t ld, int64_t headDim, int64_t vecs) {
  if (headDim % 8 != 0 || ld % 8 != 0 || !aligned(x, 16))
    throw std::invalid_argument(std::string(who) + ": head_dim " + std::to_string(headDim) + " and token stride " +
                                std::to_string(ld) + " must be multiples of 8 and the tensor 16-byte aligned");
  if (vecs > INT32_MAX) throw std::invalid_argument(std::string(who) + ": more than 2^31 - 1 vectors of 8 channels");
}

// Both layer norm entries: the warp-per-row kernel where a row is dim / 128 vectors of four per
// lane and every vector access is aligned, else one CTA per row.
template <class In>
void layerNormRows(const In* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w, const float* b,
                   const float* shift, const float* scale, float eps, CUstream_st* stream) {
  if (rows <= 0) return;
  const bool warpRows = dim > 0 && dim % 128 == 0 && dim <= kLnWarpMaxDim && aligned(x, 4 * sizeof(In)) && aligned(w, 16) &&
                        aligned(b, 16) && aligned(shift, 16) && aligned(scale, 16) && aligned(y, 8) && aligned(q, 4);
  if (warpRows) {
    static constexpr auto launches = layerNormWarpLaunches<In>(std::make_integer_sequence<int, kLnWarpMaxDim / 128>{});
    launches[dim / 128 - 1](x, static_cast<bf16*>(y), q, qScale, rows, w, b, shift, scale, eps, stream);
    FF_CUDA_LAUNCHED("layerNormModulateWarpKernel");
    return;
  }
  layerNormModulateKernel<In><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, static_cast<bf16*>(y), q, qScale, dim,
                                                                                       w, b, shift, scale, eps);
  FF_CUDA_LAUNCHED("layerNormModulateKernel");
}


// Element-wise conversions between the fp32 and bf16 residual streams (n values).
__global__ void f32ToBf16Kernel(const float* x, bf16* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void bf16ToF32Kernel(const bf16* x, float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __bfloat162float(x[i]);
}

}  // namespace

void layerNormModulate(const float* x, void* y, int64_t rows, int64_t dim, const float* w, const float* b,
                       const float* shift, const float* scale, float eps, CUstream_st* stream) {
  layerNormModulateInt8(x, y, nullptr, nullptr, rows, dim, w, b, shift, scale, eps, stream);
}

void layerNormModulateInt8(const float* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w,
                           const float* b, const float* shift, const float* scale, float eps, CUstream_st* stream) {
  layerNormRows(x, y, q, qScale, rows, dim, w, b, shift, scale, eps, stream);
}

void layerNormModulateInt8Bf16(const void* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w,
                               const float* b, const float* shift, const float* scale, float eps, CUstream_st* stream) {
  layerNormRows(static_cast<const bf16*>(x), y, q, qScale, rows, dim, w, b, shift, scale, eps, stream);
}

void f32ToBf16(const float* x, void* y, int64_t n, CUstream_st* stream) {
  if (n <= 0) return;
  f32ToBf16Kernel<<<gridFor(n), 256, 0, stream>>>(x, static_cast<bf16*>(y), n);
  FF_CUDA_LAUNCHED("f32ToBf16Kernel");
}

void bf16ToF32(const void* x, float* y, int64_t n, CUstream_st* stream) {
  if (n <= 0) return;
  bf16ToF32Kernel<<<gridFor(n), 256, 0, stream>>>(static_cast<const bf16*>(x), y, n);
  FF_CUDA_LAUNCHED("bf16ToF32Kernel");
}

void quantizeRows(const void* x, int64_t rows, int64_t cols, int64_t ld, int8_t* q, float* scale, CUstream_st* stream) {
  if (rows <= 0) return;
  const auto grid = static_cast<unsigned>(rows);
  if (cols % 8 == 0 && ld % 8 == 0 && aligned(x, 16) && aligned(q, 8)) {
    quantizeRowsVecKernel<<<grid, kRowThreads, 0, stream>>>(static_cast<const bf16*>(x), cols, ld, q, scale);
    FF_CUDA_LAUNCHED("quantizeRowsVecKernel");
    return;
  }
  quantizeRowsKernel<Int8Rows><<<grid, kRowThreads, 0, stream>>>(static_cast<const bf16*>(x), cols, ld, q, scale);
  FF_CUDA_LAUNCHED("quantizeRowsKernel");
}

void quantizeRowsFp8(const void* x, int64_t rows, int64_t cols, int64_t ld, uint8_t* q, float* scale, CUstream_st* stream) {
  if (rows <= 0) return;
  quantizeRowsKernel<E4m3Rows><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(static_cast<const bf16*>(x), cols,
                                                                                          ld, q, scale);
  FF_CUDA_LAUNCHED("quantizeRowsKernel (e4m3)");
}

void dequantInt8(const DequantArgs& a, int64_t rows, int64_t cols, CUstream_st* stream) {
  if (rows <= 0) return;
  // The kernel moves four columns at a time: 16-byte int32 / fp32 rows and vectors, 8-byte bf16.
  const bool fits = cols % 4 == 0 && aligned(a.acc, 16) && aligned(a.wScale, 16) && aligned(a.bias, 16) &&
                    aligned(a.normW, 16) && aligned(a.residual, 16) && aligned(a.gate, 16) && aligned(a.q, 4) &&
                    aligned(a.y, 8) && (a.y == nullptr || a.ldy % 4 == 0) &&
                    (a.rope == nullptr || (a.kind == DequantKind::RmsNorm && aligned(a.rope, 16) && a.ropeHeadDim > 0 &&
                                           a.ropeHeadDim % 4 == 0 && cols % a.ropeHeadDim == 0));
  if (!fits)
    throw std::invalid_argument("dequantInt8: columns (" + std::to_string(cols) + ") and the bf16 row stride (" +
                                std::to_string(a.ldy) + ") must be multiples of 4 and the vectors 16-byte aligned"
                                " (a rope table: RmsNorm only, whole heads of a multiple of 4 channels)");
  const auto grid = static_cast<unsigned>(rows);
  // The two-pass kinds keep the row in shared memory up to the default 48 KiB per CTA.
  const bool twoPass = a.kind == DequantKind::RmsNorm || a.kind == DequantKind::Gelu;
  const bool stash = twoPass && cols * 2 <= 48 * 1024;
  const size_t smem = stash ? static_cast<size_t>(cols) * 2 : 0;
  switch (a.kind) {
    case DequantKind::Bf16: dequantKernel<DequantKind::Bf16><<<grid, kRowThreads, 0, stream>>>(a, cols, false); break;
    case DequantKind::RmsNorm: dequantKernel<DequantKind::RmsNorm><<<grid, kRowThreads, smem, stream>>>(a, cols, stash); break;
    case DequantKind::Gelu: dequantKernel<DequantKind::Gelu><<<grid, kRowThreads, smem, stream>>>(a, cols, stash); break;
    case DequantKind::Residual: dequantKernel<DequantKind::Residual><<<grid, kRowThreads, 0, stream>>>(a, cols, false); break;
  }
  FF_CUDA_LAUNCHED("dequantKernel");
}

void rmsNorm(void* x, int64_t rows, int64_t dim, int64_t ld, const float* bias, const float* w, float eps,
             CUstream_st* stream, const float* rope, int64_t ropeHeadDim) {
  if (rope && (ropeHeadDim <= 0 || dim % ropeHeadDim != 0))
    throw std::invalid_argument("rmsNorm with rope: dim " + std::to_string(dim) + " is not a whole number of heads of " +
                                std::to_string(ropeHeadDim));
  if (rows <= 0) return;
  const auto grid = static_cast<unsigned>(rows);
  // Four channels at a time where the layout allows, the rotation then in the same pass.
  const bool vec = dim % 4 == 0 && ld % 4 == 0 && aligned(x, 8) && aligned(bias, 16) && aligned(w, 16) &&
                   (rope == nullptr || (ropeHeadDim % 4 == 0 && aligned(rope, 16)));
  if (vec && dim % 128 == 0 && dim <= kLnWarpMaxDim) {  // a warp per row
    static constexpr auto launches = rmsNormWarpLaunches(std::make_integer_sequence<int, kLnWarpMaxDim / 128>{});
    launches[dim / 128 - 1](static_cast<bf16*>(x), rows, ld, bias, w, eps, reinterpret_cast<const float4*>(rope), ropeHeadDim,
                            stream);
    FF_CUDA_LAUNCHED("rmsNormWarpKernel");
    return;
  }
  if (vec) {
    rmsNormVecKernel<<<grid, kRowThreads, 0, stream>>>(static_cast<bf16*>(x), dim, ld, bias, w, eps,
                                                        reinterpret_cast<const float4*>(rope), ropeHeadDim);
    FF_CUDA_LAUNCHED("rmsNormVecKernel");
    return;
  }
  rmsNormKernel<<<grid, kRowThreads, 0, stream>>>(static_cast<bf16*>(x), dim, ld, bias, w, eps);
  FF_CUDA_LAUNCHED("rmsNormKernel");
  if (rope) rope3dApply(x, nullptr, ld, rows, dim / ropeHeadDim, ropeHeadDim, rope, stream);
}


size_t rope3dTableBytes(int64_t tokens, int64_t headDim) { return static_cast<size_t>(tokens) * (headDim / 2) * sizeof(float2); }

void rope3dTable(float* table, int64_t headDim, int64_t frames, int64_t rows, int64_t cols, double theta,
                 CUstream_st* stream) {
  const int64_t tokens = frames * rows * cols, n = tokens * (headDim / 2);
  if (n <= 0) return;
  rope3dTableKernel<<<gridFor(n), 256, 0, stream>>>(reinterpret_cast<float2*>(table), headDim, rows, cols, tokens,
                                                    std::log2(theta));
  FF_CUDA_LAUNCHED("rope3dTableKernel");
}

void rope3dApply(void* q, void* k, int64_t ld, int64_t tokens, int64_t heads, int64_t headDim, const float* table,
                 CUstream_st* stream) {
  if (tokens <= 0 || heads <= 0 || headDim <= 0) return;
  const int64_t vecs = tokens * heads * (headDim / 8);
  checkRopeLayout("rope3dApply", q, ld, headDim, vecs);
  if (k) checkRopeLayout("rope3dApply", k, ld, headDim, vecs);
  if (!aligned(table, 16)) throw std::invalid_argument("rope3dApply: the cos/sin table must be 16-byte aligned");
  const dim3 grid(gridFor(vecs), k ? 2 : 1);
  rope3dApplyKernel<<<grid, 256, 0, stream>>>(static_cast<bf16*>(q), static_cast<bf16*>(k), ld,
                                              static_cast<uint32_t>(heads * (headDim / 8)), static_cast<uint32_t>(headDim / 8),
                                              static_cast<uint32_t>(vecs), reinterpret_cast<const float4*>(table));
  FF_CUDA_LAUNCHED("rope3dApplyKernel");
}

void rope3d(void* x, int64_t ld, int64_t heads, int64_t headDim, int64_t frames, int64_t rows, int64_t cols,
            double theta, CUstream_st* stream) {
  const int64_t tokens = frames * rows * cols, vecs = tokens * heads * (headDim / 8);
  if (tokens <= 0 || heads <= 0 || headDim <= 0) return;
  checkRopeLayout("rope3d", x, ld, headDim, vecs);  // before the allocation: rope3dApply then cannot throw
  void* table = nullptr;
  FF_CUDA(cudaMallocAsync(&table, rope3dTableBytes(tokens, headDim), stream));
  rope3dTable(static_cast<float*>(table), headDim, frames, rows, cols, theta, stream);
  rope3dApply(x, nullptr, ld, tokens, heads, headDim, static_cast<float*>(table), stream);
  FF_CUDA(cudaFreeAsync(table, stream));
}

namespace {
// vec4: every pointer the op touches allows V = 4 (see columnsKernel).
template <class Op>
void launchColumns(const Op& op, int64_t rows, int64_t dim, bool vec4, CUstream_st* stream) {
  if (rows <= 0 || dim <= 0) return;
  const int64_t perRow = vec4 ? dim / 4 : dim;
  const auto threads = static_cast<unsigned>(std::min<int64_t>(256, (perRow + 31) / 32 * 32));
  if (vec4) columnsKernel<4><<<static_cast<unsigned>(rows), threads, 0, stream>>>(op, perRow);
  else columnsKernel<1><<<static_cast<unsigned>(rows), threads, 0, stream>>>(op, perRow);
  FF_CUDA_LAUNCHED("columnsKernel");
}
bool vec4Ok(int64_t dim, std::initializer_list<std::pair<const void*, uintptr_t>> ptrs) {
  if (dim % 4 != 0) return false;
  for (const auto& [p, bytes] : ptrs)
    if (!aligned(p, bytes)) return false;
  return true;
}
}  // namespace

void addBias(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream) {
  if (bias == nullptr) return;
  const BiasOp<false> op{static_cast<bf16*>(y), bias, dim};
  launchColumns(op, rows, dim, vec4Ok(dim, {{y, 8}, {bias, 16}}), stream);
}

void biasGelu(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream) {
  const BiasOp<true> op{static_cast<bf16*>(y), bias, dim};
  launchColumns(op, rows, dim, vec4Ok(dim, {{y, 8}, {bias, 16}}), stream);
}

void addGated(float* x, const void* y, int64_t rows, int64_t dim, const float* bias, const float* gate,
              CUstream_st* stream) {
  const AddGatedOp op{x, static_cast<const bf16*>(y), bias, gate, dim};
  launchColumns(op, rows, dim, vec4Ok(dim, {{x, 16}, {y, 8}, {bias, 16}, {gate, 16}}), stream);
}

}  // namespace ff::cuda
