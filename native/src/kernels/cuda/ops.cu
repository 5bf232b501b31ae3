#include <cuda_bf16.h>

#include <cmath>

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

// Reduction over the CTA (kRowThreads threads); every thread gets the result.
template <class Op>
__device__ float blockReduce(float v, float* red, Op op) {
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
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

// One CTA per row. With q, the bf16-rounded row is recomputed after its absmax is known.
__global__ void __launch_bounds__(kRowThreads) layerNormModulateKernel(const float* x, bf16* y, int8_t* q, float* qScale,
                                                                      int64_t dim, const float* w, const float* b,
                                                                      const float* shift, const float* scale, float eps) {
  __shared__ float red[kRowThreads / 32];
  const float* xr = x + blockIdx.x * dim;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) s += xr[i];
  const float mean = blockSum(s, red) / static_cast<float>(dim);
  float s2 = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) {
    const float d = xr[i] - mean;
    s2 += d * d;
  }
  const float rstd = rsqrtf(blockSum(s2, red) / static_cast<float>(dim) + eps);
  auto value = [&](int64_t i) {
    float v = (xr[i] - mean) * rstd;
    if (w) v *= w[i];
    if (b) v += b[i];
    if (scale) v *= 1.0f + scale[i];
    if (shift) v += shift[i];
    return __float2bfloat16_rn(v);
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

__global__ void __launch_bounds__(kRowThreads) quantizeRowsKernel(const bf16* x, int64_t cols, int64_t ld, int8_t* q,
                                                                 float* scale) {
  __shared__ float red[kRowThreads / 32];
  const bf16* xr = x + blockIdx.x * ld;
  float absMax = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += kRowThreads) absMax = fmaxf(absMax, fabsf(__bfloat162float(xr[i])));
  absMax = blockReduce(absMax, red, MaxOp{});
  const float inv = int8Inverse(absMax);
  for (int64_t i = threadIdx.x; i < cols; i += kRowThreads) q[blockIdx.x * cols + i] = toInt8(__bfloat162float(xr[i]), inv);
  if (threadIdx.x == 0) scale[blockIdx.x] = absMax / 127.0f;
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

__global__ void addBiasKernel(bf16* y, int64_t n, int64_t dim, const float* bias) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  y[i] = __float2bfloat16_rn(__bfloat162float(y[i]) + bias[i % dim]);
}

// One thread per (token, head, channel pair).
__global__ void rope3dKernel(bf16* x, int64_t ld, int64_t heads, int64_t hd, int64_t rows, int64_t cols, int64_t tokens,
                             double log2Theta) {
  const int64_t pairs = hd / 2;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= tokens * heads * pairs) return;
  const int64_t n = i / (heads * pairs), h = (i / pairs) % heads, pr = i % pairs;
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
  bf16* p = x + n * ld + h * hd + ch;
  const float a = __bfloat162float(p[0]), b = __bfloat162float(p[1]);
  p[0] = __float2bfloat16_rn(static_cast<float>(a * cs - b * sn));
  p[1] = __float2bfloat16_rn(static_cast<float>(a * sn + b * cs));
}

__device__ __forceinline__ float geluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

__global__ void biasGeluKernel(bf16* y, int64_t n, int64_t dim, const float* bias) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  y[i] = __float2bfloat16_rn(geluTanh(__bfloat162float(y[i]) + (bias ? bias[i % dim] : 0.0f)));
}

__global__ void addGatedKernel(float* x, const bf16* y, int64_t n, int64_t dim, const float* bias, const float* gate) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int64_t c = i % dim;
  x[i] += (gate ? gate[c] : 1.0f) * (__bfloat162float(y[i]) + (bias ? bias[c] : 0.0f));
}

// One CTA per row of the int32 product; see DequantArgs.
template <DequantKind K>
__global__ void __launch_bounds__(kRowThreads) dequantKernel(DequantArgs a, int64_t cols, bool stash) {
  __shared__ float red[kRowThreads / 32];
  const int64_t r = blockIdx.x;
  const int32_t* acc = a.acc + r * cols;
  const float xs = a.xScale[r];
  auto value = [&](int64_t c) {
    const float v = xs * a.wScale[c] * static_cast<float>(acc[c]);
    return a.bias ? v + a.bias[c] : v;
  };
  bf16* y = static_cast<bf16*>(a.y) + r * a.ldy;
  if constexpr (K == DequantKind::Bf16) {
    for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) y[c] = __float2bfloat16_rn(value(c));
  } else if constexpr (K == DequantKind::Residual) {
    float* res = a.residual + r * cols;
    for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) res[c] += (a.gate ? a.gate[c] : 1.0f) * value(c);
  } else {
    // Two passes over the row (statistics, then output): the first keeps the bf16 row in shared
    // memory when the launch gave room for it (stash; each thread reads back only its own
    // columns), else the second recomputes it.
    extern __shared__ bf16 row[];
    auto first = [&](int64_t c) {
      const float v = value(c);
      const bf16 e = __float2bfloat16_rn(K == DequantKind::Gelu ? geluTanh(v) : v);
      if (stash) row[c] = e;
      return e;
    };
    auto second = [&](int64_t c) { return stash ? row[c] : __float2bfloat16_rn(K == DequantKind::Gelu ? geluTanh(value(c)) : value(c)); };
    if constexpr (K == DequantKind::RmsNorm) {
      float s = 0.0f;
      for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) {
        const float v = __bfloat162float(first(c));
        s += v * v;
      }
      const float rs = rsqrtf(blockSum(s, red) / static_cast<float>(cols) + a.eps);
      for (int64_t c = threadIdx.x; c < cols; c += kRowThreads)
        y[c] = __float2bfloat16_rn(__bfloat162float(second(c)) * rs * (a.normW ? a.normW[c] : 1.0f));
    } else {
      float absMax = 0.0f;
      for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) {
        const bf16 g = first(c);
        if (a.y) y[c] = g;
        absMax = fmaxf(absMax, fabsf(__bfloat162float(g)));
      }
      if (!a.q) return;
      absMax = blockReduce(absMax, red, MaxOp{});
      const float inv = int8Inverse(absMax);
      for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) a.q[r * cols + c] = toInt8(__bfloat162float(second(c)), inv);
      if (threadIdx.x == 0) a.qScale[r] = absMax / 127.0f;
    }
  }
}

unsigned gridFor(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

void layerNormModulate(const float* x, void* y, int64_t rows, int64_t dim, const float* w, const float* b,
                       const float* shift, const float* scale, float eps, CUstream_st* stream) {
  layerNormModulateInt8(x, y, nullptr, nullptr, rows, dim, w, b, shift, scale, eps, stream);
}

void layerNormModulateInt8(const float* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w,
                           const float* b, const float* shift, const float* scale, float eps, CUstream_st* stream) {
  if (rows <= 0) return;
  layerNormModulateKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, static_cast<bf16*>(y), q, qScale, dim, w,
                                                                                   b, shift, scale, eps);
  FF_CUDA_LAUNCHED("layerNormModulateKernel");
}

void quantizeRows(const void* x, int64_t rows, int64_t cols, int64_t ld, int8_t* q, float* scale, CUstream_st* stream) {
  if (rows <= 0) return;
  quantizeRowsKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(static_cast<const bf16*>(x), cols, ld, q, scale);
  FF_CUDA_LAUNCHED("quantizeRowsKernel");
}

void dequantInt8(const DequantArgs& a, int64_t rows, int64_t cols, CUstream_st* stream) {
  if (rows <= 0) return;
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
             CUstream_st* stream) {
  if (rows <= 0) return;
  rmsNormKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(static_cast<bf16*>(x), dim, ld, bias, w, eps);
  FF_CUDA_LAUNCHED("rmsNormKernel");
}

void addBias(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream) {
  const int64_t n = rows * dim;
  if (n <= 0 || bias == nullptr) return;
  addBiasKernel<<<gridFor(n), 256, 0, stream>>>(static_cast<bf16*>(y), n, dim, bias);
  FF_CUDA_LAUNCHED("addBiasKernel");
}

void rope3d(void* x, int64_t ld, int64_t heads, int64_t headDim, int64_t frames, int64_t rows, int64_t cols,
            double theta, CUstream_st* stream) {
  const int64_t tokens = frames * rows * cols, n = tokens * heads * (headDim / 2);
  if (n <= 0) return;
  rope3dKernel<<<gridFor(n), 256, 0, stream>>>(static_cast<bf16*>(x), ld, heads, headDim, rows, cols, tokens,
                                               std::log2(theta));
  FF_CUDA_LAUNCHED("rope3dKernel");
}

void biasGelu(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream) {
  const int64_t n = rows * dim;
  if (n <= 0) return;
  biasGeluKernel<<<gridFor(n), 256, 0, stream>>>(static_cast<bf16*>(y), n, dim, bias);
  FF_CUDA_LAUNCHED("biasGeluKernel");
}

void addGated(float* x, const void* y, int64_t rows, int64_t dim, const float* bias, const float* gate,
              CUstream_st* stream) {
  const int64_t n = rows * dim;
  if (n <= 0) return;
  addGatedKernel<<<gridFor(n), 256, 0, stream>>>(x, static_cast<const bf16*>(y), n, dim, bias, gate);
  FF_CUDA_LAUNCHED("addGatedKernel");
}

}  // namespace ff::cuda
