#include "kernels/cuda/engine_ops.h"

#include <cuda_bf16.h>

#include "kernels/cuda/check.h"

namespace ff::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 256;

unsigned gridFor(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// Element e of the [tokens, patchNumel] rows <-> its offset in [c, t, h, w].
__device__ int64_t latentOffset(const PatchGrid g, int64_t e) {
  const int64_t P = int64_t{g.channels} * g.pt * g.ph * g.pw;
  const int64_t n = e / P;
  int64_t p = e % P;
  const int d = static_cast<int>(p % g.pw);
  p /= g.pw;
  const int b = static_cast<int>(p % g.ph);
  p /= g.ph;
  const int a = static_cast<int>(p % g.pt);
  const int ch = static_cast<int>(p / g.pt);
  const int gw = g.width / g.pw, gh = g.height / g.ph;
  const int gc = static_cast<int>(n % gw), gr = static_cast<int>((n / gw) % gh), gf = static_cast<int>(n / (int64_t{gw} * gh));
  return ((int64_t{ch} * g.frames + int64_t{gf} * g.pt + a) * g.height + int64_t{gr} * g.ph + b) * g.width +
         int64_t{gc} * g.pw + d;
}

__global__ void patchifyKernel(const PatchGrid g, const float* x, float* patches, int64_t n) {
  const int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (e < n) patches[e] = x[latentOffset(g, e)];
}

__global__ void unpatchifyKernel(const PatchGrid g, const bf16* rows, float* v, int64_t n) {
  const int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (e < n) v[latentOffset(g, e)] = __bfloat162float(rows[e]);
}

__global__ void addBiasRowsKernel(float* y, const float* bias, int64_t n, int cols) {
  const int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (e < n) y[e] += bias[e % cols];
}

__global__ void absDiffSumsKernel(const bf16* a, const bf16* b, int64_t n, double* sums) {
  __shared__ float red[2][kThreads / 32];
  float diff = 0.0f, base = 0.0f;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const float av = __bfloat162float(a[i]), bv = __bfloat162float(b[i]);
    diff += fabsf(av - bv);
    base += fabsf(bv);
  }
  for (int off = 16; off > 0; off >>= 1) {
    diff += __shfl_xor_sync(0xffffffffu, diff, off);
    base += __shfl_xor_sync(0xffffffffu, base, off);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    red[0][warp] = diff;
    red[1][warp] = base;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double d = 0, s = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      d += red[0][w];
      s += red[1][w];
    }
    atomicAdd(sums, d);
    atomicAdd(sums + 1, s);
  }
}

__global__ void subtractKernel(const float* after, const float* before, float* out, int64_t n) {
  const int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (e < n) out[e] = after[e] - before[e];
}

__global__ void addInPlaceKernel(float* x, const float* y, int64_t n) {
  const int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (e < n) x[e] += y[e];
}

}  // namespace

void patchify(const PatchGrid& g, const float* x, float* patches, CUstream_st* stream) {
  const int64_t n = int64_t{g.tokens()} * g.patchNumel();
  patchifyKernel<<<gridFor(n), kThreads, 0, stream>>>(g, x, patches, n);
  FF_CUDA_LAUNCHED("patchifyKernel");
}

void unpatchify(const PatchGrid& g, const void* rows, float* v, CUstream_st* stream) {
  const int64_t n = int64_t{g.tokens()} * g.patchNumel();
  unpatchifyKernel<<<gridFor(n), kThreads, 0, stream>>>(g, static_cast<const bf16*>(rows), v, n);
  FF_CUDA_LAUNCHED("unpatchifyKernel");
}

// Row-major y [m, n] = x [m, k] . w [n, k]^T is column-major y^T [n, m] = w . x^T ("TN").
void gemmF32Bias(cublasContext* h, CUstream_st* stream, int m, int n, int k, const float* x, const float* w,
                 const float* bias, float* y) {
  const float one = 1.0f, zero = 0.0f;
  FF_CUBLAS(cublasSetStream(h, stream));
  FF_CUBLAS(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, k, x, k, &zero, y, n));
  const int64_t total = int64_t{m} * n;
  addBiasRowsKernel<<<gridFor(total), kThreads, 0, stream>>>(y, bias, total, n);
  FF_CUDA_LAUNCHED("addBiasRowsKernel");
}

void absDiffSums(const void* a, const void* b, int64_t n, double* sums, CUstream_st* stream) {
  const unsigned blocks = gridFor(n) < 1024 ? gridFor(n) : 1024;
  absDiffSumsKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const bf16*>(a), static_cast<const bf16*>(b), n, sums);
  FF_CUDA_LAUNCHED("absDiffSumsKernel");
}

void subtract(const float* after, const float* before, float* residual, int64_t n, CUstream_st* stream) {
  subtractKernel<<<gridFor(n), kThreads, 0, stream>>>(after, before, residual, n);
  FF_CUDA_LAUNCHED("subtractKernel");
}

void addInPlace(float* x, const float* y, int64_t n, CUstream_st* stream) {
  addInPlaceKernel<<<gridFor(n), kThreads, 0, stream>>>(x, y, n);
  FF_CUDA_LAUNCHED("addInPlaceKernel");
}

}  // namespace ff::cuda
