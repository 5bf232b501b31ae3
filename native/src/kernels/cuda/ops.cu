#include <cuda_bf16.h>

#include <cmath>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"

namespace ff::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kRowThreads = 256;

// Sum over the CTA (kRowThreads threads); every thread gets the total.
__device__ float blockSum(float v, float* red) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = 0.0f;
  for (int w = 0; w < kRowThreads / 32; ++w) t += red[w];
  return t;
}

__global__ void __launch_bounds__(kRowThreads) layerNormModulateKernel(const float* x, bf16* y, int64_t dim, const float* w,
                                                                      const float* b, const float* shift, const float* scale,
                                                                      float eps) {
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
  bf16* yr = y + blockIdx.x * dim;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) {
    float v = (xr[i] - mean) * rstd;
    if (w) v *= w[i];
    if (b) v += b[i];
    if (scale) v *= 1.0f + scale[i];
    if (shift) v += shift[i];
    yr[i] = __float2bfloat16_rn(v);
  }
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

unsigned gridFor(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

void layerNormModulate(const float* x, void* y, int64_t rows, int64_t dim, const float* w, const float* b,
                       const float* shift, const float* scale, float eps, CUstream_st* stream) {
  if (rows <= 0) return;
  layerNormModulateKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, static_cast<bf16*>(y), dim, w, b, shift,
                                                                                   scale, eps);
  FF_CUDA_LAUNCHED("layerNormModulateKernel");
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
