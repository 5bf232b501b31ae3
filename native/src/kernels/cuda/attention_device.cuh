// Device helpers shared by the attention kernels (attention.cu, attention_sm90.cu): 16-byte
// cp.async copies into shared memory, bf16 packing, and the e4m3 V^T that FP8 P.V reads.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cuda/check.h"

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

constexpr float kFp8Max = 448.0f;  // e4m3's largest finite value

// The A fragment of e4m3 m64nNk32 (per warp 16 rows, as mma.sync m16n8k32's 8-bit A): a0 = row g,
// k 4c..4c+3 (byte i = k 4c+i), a1 = row g+8, same k, a2 = row g, k 16+4c.., a3 = row g+8, k 16+4c...
// Lane c holds S columns 8j + 2c + {0, 1}, so rather than moving bytes between lanes the keys of V^T
// are permuted: within each 32-key group, position 4c + i (+16) holds key 8 (i / 2) + 2c + (i % 2)
// (+16). This maps key t of a group (bits: t = 16 h + 8 b + 2 c + l) to its position.
__host__ __device__ constexpr int fp8KeySlot(int t) {
  return (t & ~15) | (((t >> 1) & 3) << 2) | (((t >> 3) & 1) << 1) | (t & 1);
}

// e4m3 V^T of one 64-key block staged in shared memory, tile [HD rows][kVtPitch bytes]: vtScatter
// puts key t's channels 8 c8 .. 8 c8 + 7 (u: 16 bytes of bf16, zero past n) at tile[d][fp8KeySlot(t)]
// as v * kFp8Max / max|v| of the channel (amaxBits: the head's [HD] float bits); vtStore then copies
// row d's 64 bytes to rowAt(d). 68-byte rows (17 words) keep the scatter's byte stores to 4-way
// bank conflicts and the row reads (4 bytes a lane) to none.
constexpr int kVtPitch = 68;
template <int HD>
__device__ __forceinline__ void vtScatter(uint4 u, int t, int c8, const int* amaxBits, uint8_t* tile) {
  const int slot = fp8KeySlot(t);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = unpackBf16(w[i]);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int d = c8 * 8 + 2 * i + e;
      const float amax = __int_as_float(amaxBits[d]);
      const float x = amax > 0.0f ? (e ? f.y : f.x) * (kFp8Max / amax) : 0.0f;
      tile[d * kVtPitch + slot] = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
    }
  }
}
template <int HD, int THREADS, typename RowAt>
__device__ __forceinline__ void vtStore(const uint8_t* tile, RowAt rowAt, int tid) {
  for (int i = tid; i < HD * 16; i += THREADS) {
    const int d = i >> 4, c = i & 15;
    *reinterpret_cast<uint32_t*>(rowAt(d) + c * 4) = *reinterpret_cast<const uint32_t*>(&tile[d * kVtPitch + c * 4]);
  }
}

namespace {  // without relocatable device code each translation unit keeps its own copy

// Per-head channel sums of x over tokens (ABSMAX: maxima of |x|): each CTA reduces rowsPerCta rows
// with 16-byte loads and folds its [HD] partials into the zeroed out [heads, HD] with one atomic
// per channel (ABSMAX: atomicMax on the float bits, which order as the non-negative floats do).
template <int HD, bool ABSMAX>
__device__ __forceinline__ void channelReduceCta(const __nv_bfloat16* x, int64_t head, int64_t tok, int n, int rowsPerCta,
                                                 float* out, int h, int chunk) {
  constexpr int kCh = HD / 8, kRows = 256 / kCh;  // 16-byte chunks per row; rows per pass
  __shared__ float part[kRows][HD + 1];
  const int tid = threadIdx.x, c = tid % kCh, r = tid / kCh;
  const int t1 = min(n, (chunk + 1) * rowsPerCta);
  const __nv_bfloat16* base = x + h * head + c * 8;
  float acc[8] = {};
#pragma unroll 4
  for (int t = chunk * rowsPerCta + r; t < t1; t += kRows) {
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

template <int HD, bool ABSMAX>
__global__ void __launch_bounds__(256) channelReduceKernel(const __nv_bfloat16* x, int64_t head, int64_t tok, int n,
                                                           int rowsPerCta, float* out) {
  channelReduceCta<HD, ABSMAX>(x, head, tok, n, rowsPerCta, out, blockIdx.y, blockIdx.x);
}

// The key sums (blockIdx.z 0) and v's max|v| (blockIdx.z 1, into the float bits amaxBits) in one
// launch: channelReduceKernel's two passes over k and v without a launch between them.
template <int HD>
__global__ void __launch_bounds__(256) keySumValueMaxKernel(const __nv_bfloat16* k, int64_t kHead, int64_t kTok,
                                                            const __nv_bfloat16* v, int64_t vHead, int64_t vTok, int n,
                                                            int rowsPerCta, float* ksum, int* amaxBits) {
  if (blockIdx.z == 0) channelReduceCta<HD, false>(k, kHead, kTok, n, rowsPerCta, ksum, blockIdx.y, blockIdx.x);
  else channelReduceCta<HD, true>(v, vHead, vTok, n, rowsPerCta, reinterpret_cast<float*>(amaxBits), blockIdx.y, blockIdx.x);
}

// Per-head, per-channel max|v| over v's n tokens into amaxBits [heads, HD] (float bits), zeroed
// first: the scale of e4m3 V^T (vtScatter).
template <int HD>
void channelAbsMax(const __nv_bfloat16* v, int64_t head, int64_t tok, int n, int heads, int* amaxBits, cudaStream_t stream) {
  FF_CUDA(cudaMemsetAsync(amaxBits, 0, sizeof(int) * heads * HD, stream));
  constexpr int kRowsPerCta = 256;
  channelReduceKernel<HD, true><<<dim3((n + kRowsPerCta - 1) / kRowsPerCta, heads), 256, 0, stream>>>(
      v, head, tok, n, kRowsPerCta, reinterpret_cast<float*>(amaxBits));
  FF_CUDA_LAUNCHED("channelReduceKernel (max |v|)");
}

}  // namespace

}  // namespace ff::cuda
