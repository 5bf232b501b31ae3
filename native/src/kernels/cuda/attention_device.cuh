// Device helpers shared by the attention kernels (attention.cu, attention_sm90.cu): 16-byte
// cp.async copies into shared memory and bf16 packing.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace ff::cuda {

__device__ __forceinline__ uint32_t smemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes from global g to shared address s; ok = false writes 16 zero bytes (source size 0).
__device__ __forceinline__ void cpAsync16(uint32_t s, const void* g, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ float2 unpackBf16(uint32_t u) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u));
}

namespace {  // without relocatable device code each translation unit keeps its own copy

// Per-head channel sums of x over tokens (ABSMAX: maxima of |x|): each CTA reduces rowsPerCta rows
// with 16-byte loads and folds its [HD] partials into the zeroed out [heads, HD] with one atomic
// per channel (ABSMAX: atomicMax on the float bits, which order as the non-negative floats do).
template <int HD, bool ABSMAX>
__global__ void __launch_bounds__(256) channelReduceKernel(const __nv_bfloat16* x, int64_t head, int64_t tok, int n,
                                                           int rowsPerCta, float* out) {
  constexpr int kCh = HD / 8, kRows = 256 / kCh;  // 16-byte chunks per row; rows per pass
  __shared__ float part[kRows][HD + 1];
  const int h = blockIdx.y, tid = threadIdx.x, c = tid % kCh, r = tid / kCh;
  const int t1 = min(n, (blockIdx.x + 1) * rowsPerCta);
  const __nv_bfloat16* base = x + h * head + c * 8;
  float acc[8] = {};
#pragma unroll 4
  for (int t = blockIdx.x * rowsPerCta + r; t < t1; t += kRows) {
    const uint4 u = *reinterpret_cast<const uint4*>(base + t * tok);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = unpackBf16(w[i]);
      acc[2 * i] = ABSMAX ? fmaxf(acc[2 * i], fabsf(f.x)) : acc[2 * i] + f.x;
      acc[2 * i + 1] = ABSMAX ? fmaxf(acc[2 * i + 1], fabsf(f.y)) : acc[2 * i + 1] + f.y;
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) part[r][c * 8 + i] = acc[i];
  __syncthreads();
  for (int d = tid; d < HD; d += 256) {
    float s = 0.0f;
#pragma unroll 8
    for (int i = 0; i < kRows; ++i) s = ABSMAX ? fmaxf(s, part[i][d]) : s + part[i][d];
    if constexpr (ABSMAX) atomicMax(reinterpret_cast<int*>(out) + h * HD + d, __float_as_int(s));
    else atomicAdd(out + h * HD + d, s);
  }
}

}  // namespace

}  // namespace ff::cuda
