// Building blocks of the Hopper (sm_90a) attention kernels: shared-memory layouts and wgmma
// descriptors, tile loaders, the wgmma instructions they use, P packing, and the V^T pass of FP8
// P.V. Included by attention_sm90.cu (the kernels) and attention_sm90_probe.cu (one-tile probes for
// the tests), both compiled for sm_90a only. Everything is in an anonymous namespace: without
// relocatable device code each translation unit keeps its own copy of the device code.
//
// Shared-memory layouts, HD = head_dim (64 or 128), every tile 1024-byte aligned. Swizzles act on
// the byte offset in the tile: 128B swizzle = bits 4-6 XOR bits 7-9 (16-byte chunk c of a 128-byte
// row r lands at r * 128 + ((c ^ (r % 8)) * 16)); 64B swizzle = bits 4-5 XOR bits 7-8 (chunk c of a
// 64-byte row r at r * 64 + ((c ^ ((r / 2) % 4)) * 16)).
//   sQ  [WGS * 64 rows][HD B]  INT8 q, K-major A operand (row = query, channels contiguous)
//   sK  [BN rows][HD B]        INT8 k~, K-major B operand (row = key); 128B swizzle at HD 128, 64B at 64
//   sV  [HD / 64 halves][BN rows][128 B]  bf16 v, 128B swizzle: half c holds channels 64c..64c+63 of
//                              each key row; the MN-major ("transposed") B operand of P.V
//   or, with FP8 P.V (FF_CUDA_WGMMA_PV=fp8), sVt [HD rows][BN B]: e4m3 v^T (from vTransposeFp8Kernel,
//                              keys permuted by fp8KeySlot), K-major B operand swizzled as sK
// wgmma shared-memory descriptor (PTX ISA "Matrix Descriptor Format"): bits 0-13 start address >> 4,
// 16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4, 49-51 base offset (0: every
// swizzle pattern starts aligned), 62-63 swizzle (1 = 128B, 2 = 64B). Canonical layouts in units of
// elements, T = 16 bytes / element size, S = swizzle width / 16 B (8 or 4) (CUTLASS's notation):
//   K-major  ((8, m), (T, 2k)) : ((S T, SBO), (1, T))   8 rows of S * 16 B, SBO per 8 rows; LBO unused
//   MN-major ((T, 8, m), (8, k)) : ((1, T, LBO), (8T, SBO))  (128B) 64 bf16 of N contiguous per
//            128-B row, LBO between 64-column groups of N, SBO between groups of 8 K-rows
// so Q and K~ use SBO = 8 * HD (LBO = 16, ignored) and step K by 32 bytes (one k32 INT8 slice)
// inside the swizzle row; V uses LBO = BN * 128 (the next channel half), SBO = 1024, and steps K by
// 16 keys = 2048 bytes.
//
// Register fragments (PTX ISA "wgmma register fragments"; warp w = 0..3 of the warpgroup owns rows
// 16w..16w+15, g = lane / 4, c = lane % 4):
//   accumulator D of m64nN (s32 or f32), register i = 0..N/2-1, chunk j = i / 4, e = i % 4:
//     row 16w + g + 8 * (e / 2), column 8j + 2c + (e % 2)
//   A of bf16 m64nNk16 from registers, 4 x b32 of two bf16 each (same as mma.sync m16n8k16's A):
//     a0 (row g, k 2c..2c+1), a1 (row g+8, k 2c..), a2 (row g, k 2c+8..), a3 (row g+8, k 2c+8..)
// hence P's A fragment for keys 16kk..16kk+15 is S chunks 2kk and 2kk+1 packed pairwise to bf16.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/attention_device.cuh"
#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/check.h"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "the wgmma kernels must be compiled for sm_90a only (-gencode=arch=compute_90a,code=sm_90a)"
#endif

namespace ff::cuda::sm90 {
namespace {

__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Byte offset of 16-byte chunk c of row r in a tile of ROWBYTES-byte rows, swizzled as wgmma reads
// it: 128B swizzle for 128-byte rows, 64B swizzle for 64-byte rows.
template <int ROWBYTES>
__device__ __forceinline__ uint32_t swizzled(int r, int c) {
  static_assert(ROWBYTES == 128 || ROWBYTES == 64, "128- or 64-byte rows");
  if constexpr (ROWBYTES == 128) return r * 128 + ((c ^ (r & 7)) << 4);
  else return r * 64 + ((c ^ ((r >> 1) & 3)) << 4);
}

// Descriptor swizzle field for rows of ROWBYTES: 1 = 128B, 2 = 64B.
template <int ROWBYTES>
constexpr uint64_t kSwizzleMode = ROWBYTES == 128 ? 1 : 2;

template <int ROWBYTES>
__device__ __forceinline__ uint64_t smemDesc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (kSwizzleMode<ROWBYTES> << 62);
}

// ROWS rows of CHUNKS 16-byte chunks (source row stride in bytes, from row0; rows at or past nValid
// are zero-filled: cp.async with source size 0); chunk c of row r goes to shared address dst(r, c).
template <int ROWS, int CHUNKS, int THREADS, typename Dst>
__device__ __forceinline__ void loadRows(Dst dst, const uint8_t* src, int64_t stride, int row0, int nValid, int tid) {
  static_assert(ROWS * CHUNKS % THREADS == 0, "the tile splits evenly over the threads");
#pragma unroll 1  // unrolled, every chunk's addresses stay live across the main loop (spills)
  for (int it = 0; it < ROWS * CHUNKS / THREADS; ++it) {
    const int x = tid + it * THREADS, r = x / CHUNKS, c = x % CHUNKS;
    const bool ok = row0 + r < nValid;
    cpAsync16(dst(r, c), ok ? src + static_cast<int64_t>(row0 + r) * stride + c * 16 : src, ok);
  }
}

// INT8 rows of HD bytes into a K-major tile at base.
template <int HD, int ROWS, int THREADS>
__device__ __forceinline__ void loadKMajor(uint32_t base, const uint8_t* src, int64_t stride, int row0, int nValid, int tid) {
  loadRows<ROWS, HD / 16, THREADS>([base](int r, int c) { return base + swizzled<HD>(r, c); }, src, stride, row0, nValid, tid);
}

// bf16 rows of HD channels into HD / 64 halves of [ROWS][128 B] at base.
template <int HD, int ROWS, int THREADS>
__device__ __forceinline__ void loadV(uint32_t base, const uint8_t* src, int64_t stride, int row0, int nValid, int tid) {
  loadRows<ROWS, HD / 8, THREADS>([base](int r, int c) { return base + (c >> 3) * ROWS * 128 + swizzled<128>(r, c & 7); },
                                  src, stride, row0, nValid, tid);
}

__device__ __forceinline__ void wgFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accesses of accumulator registers across a wait.
template <int N>
__device__ __forceinline__ void pinRegs(int (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void pinRegs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

#define FF_RW_S32(x) "+r"(x)
#define FF_W_S32(x) "=r"(x)
#define FF_RW_F32(x) "+f"(x)
#define FF_W_F32(x) "=f"(x)
#define FF_OPS8(M, a, i) M(a[i]), M(a[i + 1]), M(a[i + 2]), M(a[i + 3]), M(a[i + 4]), M(a[i + 5]), M(a[i + 6]), M(a[i + 7])
#define FF_OPS32(M, a) FF_OPS8(M, a, 0), FF_OPS8(M, a, 8), FF_OPS8(M, a, 16), FF_OPS8(M, a, 24)
#define FF_OPS64(M, a) FF_OPS32(M, a), FF_OPS8(M, a, 32), FF_OPS8(M, a, 40), FF_OPS8(M, a, 48), FF_OPS8(M, a, 56)

#define FF_REGS32 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31}"
#define FF_REGS64                                                                                                     \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "  \
  "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d[64 x N] (+)= a[64 x 32] . b[32 x N]^T, INT8 in, int32 out; both operands from shared memory
// (K-major). ACCUMULATE = false overwrites d (scale-d = 0) and declares d write-only, so the
// previous tile's scores are dead once converted instead of held for this instruction.
#define FF_QK_S8(N, REGS, IDX_A, IDX_B, IDX_P, OPS)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" IDX_P ", 0;\n"                                                \
               "wgmma.mma_async.sync.aligned.m64n" #N "k32.s32.s8.s8 " REGS ", %" IDX_A ", %" IDX_B ", p;\n}\n" \
               : OPS                                                                                               \
               : "l"(a), "l"(b), "r"(ACCUMULATE ? 1 : 0))
template <bool ACCUMULATE>
__device__ __forceinline__ void wgmmaS8(int (&d)[64], uint64_t a, uint64_t b) {
  if constexpr (ACCUMULATE) FF_QK_S8(128, FF_REGS64, "64", "65", "66", FF_OPS64(FF_RW_S32, d));
  else FF_QK_S8(128, FF_REGS64, "64", "65", "66", FF_OPS64(FF_W_S32, d));
}
template <bool ACCUMULATE>
__device__ __forceinline__ void wgmmaS8(int (&d)[32], uint64_t a, uint64_t b) {
  if constexpr (ACCUMULATE) FF_QK_S8(64, FF_REGS32, "32", "33", "34", FF_OPS32(FF_RW_S32, d));
  else FF_QK_S8(64, FF_REGS32, "32", "33", "34", FF_OPS32(FF_W_S32, d));
}

// d[64 x 128] (+)= a[64 x 16] . b[16 x 128]^T, bf16 in, fp32 out, both operands from shared memory
// (K-major, imm-trans 0): the Q.K^T of dense bf16 (flash) attention.
#define FF_QK_BF16(OPS)                                                                                            \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                     \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FF_REGS64 ", %64, %65, p, 1, 1, 0, 0;\n}\n" \
               : OPS                                                                                             \
               : "l"(a), "l"(b), "r"(ACCUMULATE ? 1 : 0))
template <bool ACCUMULATE>
__device__ __forceinline__ void wgmmaBf16(float (&d)[64], uint64_t a, uint64_t b) {
  if constexpr (ACCUMULATE) FF_QK_BF16(FF_OPS64(FF_RW_F32, d));
  else FF_QK_BF16(FF_OPS64(FF_W_F32, d));
}

// d[64 x N] += a . b, fp32 accumulation, a from registers, b from shared memory: bf16 (k16; b
// MN-major, imm-trans-b = 1) or e4m3 (k32; b K-major, FP8 has no transposed form).
#define FF_WGMMA_RS(SHAPE, TYPES, IMMS, REGS, IDX_A, IDX_B, IDX_P, OPS)                                              \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" IDX_P ", 0;\n"                                                \
               "wgmma.mma_async.sync.aligned." SHAPE "." TYPES " " REGS ", {" IDX_A "}, %" IDX_B ", p, " IMMS ";\n}\n" \
               : OPS                                                                                               \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1))
template <bool FP8>
__device__ __forceinline__ void wgmmaPV(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  if constexpr (FP8) FF_WGMMA_RS("m64n128k32", "f32.e4m3.e4m3", "1, 1", FF_REGS64, "%64, %65, %66, %67", "68", "69", FF_OPS64(FF_RW_F32, d));
  else FF_WGMMA_RS("m64n128k16", "f32.bf16.bf16", "1, 1, 1", FF_REGS64, "%64, %65, %66, %67", "68", "69", FF_OPS64(FF_RW_F32, d));
}
template <bool FP8>
__device__ __forceinline__ void wgmmaPV(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  if constexpr (FP8) FF_WGMMA_RS("m64n64k32", "f32.e4m3.e4m3", "1, 1", FF_REGS32, "%32, %33, %34, %35", "36", "37", FF_OPS32(FF_RW_F32, d));
  else FF_WGMMA_RS("m64n64k16", "f32.bf16.bf16", "1, 1, 1", FF_REGS32, "%32, %33, %34, %35", "36", "37", FF_OPS32(FF_RW_F32, d));
}

// FP8 P.V (SageAttention2's route): P in [0, 1] is scaled by e4m3's largest value (kFp8Max) and V
// by max|v| / that value per channel, so that both use e4m3's range; O is divided back in the
// epilogue. V^T's keys are permuted by fp8KeySlot (attention_device.cuh).

// Four fp32 -> e4m3 (saturating), byte i = element i.
__device__ __forceinline__ uint32_t packE4m3(float x0, float x1, float x2, float x3) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(x0, x1), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(x2, x3), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// S = Q . K~^T for one tile: HD / 32 k32 slices of the channels, 32 bytes apart inside each
// swizzle row. Issues only (no commit).
template <int HD, int BN>
__device__ __forceinline__ void issueQK(int (&acc)[BN / 2], uint32_t sQw, uint32_t sK) {
  wgmmaS8<false>(acc, smemDesc<HD>(sQw, 16, 8 * HD), smemDesc<HD>(sK, 16, 8 * HD));
#pragma unroll
  for (int kk = 1; kk < HD / 32; ++kk)
    wgmmaS8<true>(acc, smemDesc<HD>(sQw + kk * 32, 16, 8 * HD), smemDesc<HD>(sK + kk * 32, 16, 8 * HD));
}

// S = Q . K^T for one 128-key tile in bf16: Q and K as HD / 64 channel halves of 128-byte rows
// (128B swizzle, the layout of sV), halves qHalf / kHalf bytes apart; four k16 slices, 32 bytes
// apart, per half. Issues only (no commit).
template <int HD>
__device__ __forceinline__ void issueQKBf16(float (&acc)[64], uint32_t sQw, uint32_t qHalf, uint32_t sK, uint32_t kHalf) {
#pragma unroll
  for (int c = 0; c < HD / 16; ++c) {
    const uint32_t qa = sQw + (c / 4) * qHalf + (c % 4) * 32, kb = sK + (c / 4) * kHalf + (c % 4) * 32;
    if (c == 0) wgmmaBf16<false>(acc, smemDesc<128>(qa, 16, 1024), smemDesc<128>(kb, 16, 1024));
    else wgmmaBf16<true>(acc, smemDesc<128>(qa, 16, 1024), smemDesc<128>(kb, 16, 1024));
  }
}

// O += P . V for one tile: 16 keys (2048 bytes of each V half) per step. Issues only.
template <int HD, int BN>
__device__ __forceinline__ void issuePV(float (&o)[HD / 2], const uint32_t (&pf)[BN / 16][4], uint32_t sV) {
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) wgmmaPV<false>(o, pf[kk], smemDesc<128>(sV + kk * 2048, BN * 128, 1024));
}

// O += P . V with e4m3 operands: V^T [HD rows][BN keys] K-major (BN-byte rows, swizzled as Q and
// K~ are), 32 keys = 32 bytes per step. Issues only.
template <int HD, int BN>
__device__ __forceinline__ void issuePV8(float (&o)[HD / 2], const uint32_t (&pf)[BN / 32][4], uint32_t sVt) {
#pragma unroll
  for (int kk = 0; kk < BN / 32; ++kk) wgmmaPV<true>(o, pf[kk], smemDesc<BN>(sVt + kk * 32, 16, 8 * BN));
}
// The same over a tile of two 64-key blocks of block-major V^T ([HD rows][64 B] each, 64B swizzle,
// HD * 64 bytes apart): keys 32kk.. are in block kk / 2 at byte 32 (kk % 2). Issues only.
template <int HD>
__device__ __forceinline__ void issuePV8Blocks(float (&o)[HD / 2], const uint32_t (&pf)[4][4], uint32_t sVt) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) wgmmaPV<true>(o, pf[kk], smemDesc<64>(sVt + (kk / 2) * HD * 64 + (kk % 2) * 32, 16, 8 * 64));
}
// P registers of one tile: bf16 pairs (k16 steps) or e4m3 quads (k32 steps).
template <int BN, bool PV8>
using PFrag = uint32_t[PV8 ? BN / 32 : BN / 16][4];

// One thread's P values of a tile, in the S accumulator's order (s[4j + e]: chunk j, e as in the
// map at the top), -> the A fragments of P.V.
// Two non-negative floats -> bf16 pair on the integer pipe (rounding half away from zero on the
// bit pattern, then the high halves), sparing the conversion unit that ex2 also needs.
__device__ __forceinline__ uint32_t packBf16Alu(float lo, float hi) {
  return __byte_perm(__float_as_uint(lo) + 0x8000u, __float_as_uint(hi) + 0x8000u, 0x7632);
}

// e4m3 P is scaled by pScale first (kFp8Max unless the softmax already folded the scale in); bf16 P
// is packed with packBf16Alu when BF16_ALU.
template <int BN, bool PV8, bool BF16_ALU = false>
__device__ __forceinline__ void packP(const float (&s)[BN / 2], PFrag<BN, PV8>& pf, float pScale = kFp8Max) {
  if constexpr (PV8) {
    // Keys 32kk..32kk+31 are S chunks 4kk..4kk+3 (16 values per thread): see fp8KeySlot.
#pragma unroll
    for (int kk = 0; kk < BN / 32; ++kk) {
      const float* x = s + 16 * kk;
      pf[kk][0] = packE4m3(x[0] * pScale, x[1] * pScale, x[4] * pScale, x[5] * pScale);
      pf[kk][1] = packE4m3(x[2] * pScale, x[3] * pScale, x[6] * pScale, x[7] * pScale);
      pf[kk][2] = packE4m3(x[8] * pScale, x[9] * pScale, x[12] * pScale, x[13] * pScale);
      pf[kk][3] = packE4m3(x[10] * pScale, x[11] * pScale, x[14] * pScale, x[15] * pScale);
    }
  } else {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      auto pack = [](float lo, float hi) { return BF16_ALU ? packBf16Alu(lo, hi) : packBf16(lo, hi); };
      pf[kk][0] = pack(s[8 * kk], s[8 * kk + 1]);
      pf[kk][1] = pack(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = pack(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = pack(s[8 * kk + 6], s[8 * kk + 7]);
    }
  }
}
// Row maxima of rows g and g + 8 over the 4 lanes (c = 0..3) that hold their columns.
__device__ __forceinline__ void quadMax(float& m0, float& m1) {
  m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 1));
  m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 2));
  m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 1));
  m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 2));
}

// Online softmax of one thread's rows g and g + 8 (base 2).
struct RowState {
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
};

template <int HD>
__device__ __forceinline__ void rescaleRows(float (&o)[HD / 2], float2 alpha) {
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) {
    o[4 * n] *= alpha.x;
    o[4 * n + 1] *= alpha.x;
    o[4 * n + 2] *= alpha.y;
    o[4 * n + 3] *= alpha.y;
  }
}

// Epilogue: O / l as bf16 for one thread's rows r0 and r0 + 8 (rows past nQ are not written), added
// to what out holds when a.accumulate (every load before the first store: the rows lie oTok apart,
// which the compiler cannot prove non-zero). With e4m3 P.V, O is first multiplied by its channel's
// max|v| * vMul (V was stored as v * kFp8Max / max|v|; vMul also undoes P's scale).
template <int HD, bool PV8>
__device__ __forceinline__ void storeRows(float (&o)[HD / 2], const RowState& st, const SageArgs& a, int h, int r0, int c4,
                                          float vMul) {
  float l0 = st.l0, l1 = st.l1;
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  const int r1 = r0 + 8;
  auto* go = static_cast<uint8_t*>(a.out) + h * a.oHead * 2;
  auto* dst0 = reinterpret_cast<uint32_t*>(go + r0 * a.oTok * 2 + c4 * 4);
  auto* dst1 = reinterpret_cast<uint32_t*>(go + r1 * a.oTok * 2 + c4 * 4);
  if constexpr (PV8) {
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      const int col = 8 * n + 2 * c4;
      const float v0 = __int_as_float(a.vAmax[h * HD + col]) * vMul;
      const float v1 = __int_as_float(a.vAmax[h * HD + col + 1]) * vMul;
      o[4 * n] *= v0;
      o[4 * n + 1] *= v1;
      o[4 * n + 2] *= v0;
      o[4 * n + 3] *= v1;
    }
  }
  if (a.accumulate) {
    uint32_t prev[HD / 8][2];
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      prev[n][0] = r0 < a.nQ ? dst0[n * 4] : 0u;
      prev[n][1] = r1 < a.nQ ? dst1[n * 4] : 0u;
    }
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      const float2 p0 = unpackBf16(prev[n][0]), p1 = unpackBf16(prev[n][1]);
      if (r0 < a.nQ) dst0[n * 4] = packBf16(p0.x + o[4 * n] * inv0, p0.y + o[4 * n + 1] * inv0);
      if (r1 < a.nQ) dst1[n * 4] = packBf16(p1.x + o[4 * n + 2] * inv1, p1.y + o[4 * n + 3] * inv1);
    }
    return;
  }
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) {
    if (r0 < a.nQ) dst0[n * 4] = packBf16(o[4 * n] * inv0, o[4 * n + 1] * inv0);
    if (r1 < a.nQ) dst1[n * 4] = packBf16(o[4 * n + 2] * inv1, o[4 * n + 3] * inv1);
  }
}

// The overlapped schedule's loop: step(i, pin, pout) for every tile but the last (P.V of tile i
// with P_i from pin, the softmax of tile i + 1 into pout), then last(i, P) for the last tile. P
// alternates between two register sets so that the one an in-flight P.V reads is never written.
template <typename P, typename Step, typename Last>
__device__ __forceinline__ void pipelineTiles(int nTiles, P& pf, P& pn, Step& step, Last& last) {
  int i = 0;
  for (; i + 2 < nTiles; i += 2) {
    step(i, pf, pn);
    step(i + 1, pn, pf);
  }
  if (i + 1 < nTiles) {
    step(i, pf, pn);
    last(i + 1, pn);
  } else {
    last(i, pf);
  }
}

// v -> vt8 e4m3: v * kFp8Max / max|v| of its channel, keys placed by fp8KeySlot within their
// 32-key group, zero past n. One CTA per (64 keys, head). rowBytes > 0: [heads, HD, rowBytes] (the
// grid covers rowBytes, so the padding every 128-key tile may read is zero too); rowBytes == 0:
// block-major [heads, gridDim.x, HD, 64], each 64-key block's V^T contiguous (SLA's sparse branch
// loads the selected blocks one by one).
template <int HD>
__global__ void __launch_bounds__(256) vTransposeFp8Kernel(const __nv_bfloat16* v, int64_t head, int64_t tok, int n,
                                                           const int* amaxBits, uint8_t* vt8, int64_t rowBytes) {
  // Each thread converts 16-byte chunks (8 channels of one key) into the staging tile.
  constexpr int kChunks = HD / 8;
  __shared__ __align__(16) uint8_t tile[HD * kVtPitch];
  const int b = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  for (int x = tid; x < 64 * kChunks; x += 256) {
    const int t = x / kChunks, c = x % kChunks, key = b * 64 + t;
    uint4 u = make_uint4(0, 0, 0, 0);
    if (key < n) u = *reinterpret_cast<const uint4*>(v + h * head + static_cast<int64_t>(key) * tok + c * 8);
    vtScatter<HD>(u, t, c, amaxBits + h * HD, tile);
  }
  __syncthreads();
  vtStore<HD, 256>(tile, [&](int d) {
    return vt8 + (rowBytes > 0 ? (static_cast<int64_t>(h) * HD + d) * rowBytes + b * 64
                               : ((static_cast<int64_t>(h) * gridDim.x + b) * HD + d) * 64);
  }, tid);
}

// blockMajor: vt8 as [heads, kBlocks, HD, 64] (see vTransposeFp8Kernel).
template <int HD>
void prepareFp8V(const SageArgs& a, cudaStream_t stream, bool blockMajor = false) {
  const auto* v = static_cast<const __nv_bfloat16*>(a.v);
  channelAbsMax<HD>(v, a.vHead, a.vTok, a.nK, a.heads, a.vAmax, stream);
  const int blocks = blockMajor ? a.kBlocks : static_cast<int>(a.vtRow / 64);
  vTransposeFp8Kernel<HD><<<dim3(blocks, a.heads), 256, 0, stream>>>(v, a.vHead, a.vTok, a.nK, a.vAmax, a.vt8,
                                                                     blockMajor ? 0 : a.vtRow);
  FF_CUDA_LAUNCHED("vTransposeFp8Kernel");
}
}  // namespace
}  // namespace ff::cuda::sm90
