// Sage attention on Hopper's warpgroup MMA (sm_90a only; compiled with
// -gencode=arch=compute_90a,code=sm_90a, see native/CMakeLists.txt). Same math as attnKernel's Sage
// mode in attention.cu, after the same quantization (prepareSage): S = Q.K~^T on INT8 wgmma
// (m64nNk32, int32 accumulation) dequantized by qScale * kScale (softmax scale and log2 e folded
// into qScale), online softmax in fp32 registers (base 2), P.V on bf16 wgmma with P from registers.
//
// CTA: WGS warpgroups of 128 threads, each owning 64 query rows (dense: 2 warpgroups, 128 rows,
// 128-key tiles; SLA's sparse branch: 1 warpgroup per 64-row query block, 64-key tiles). K~ (INT8)
// and V (bf16) tiles stream through shared memory with cp.async issued by every thread (no producer
// warpgroup or TMA yet), written straight into the 128-byte-swizzled layouts wgmma reads.
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
//
// Two schedules (template OVERLAP; FF_CUDA_WGMMA_SERIAL=1 selects the serial one):
//  serial, 2 stages, per tile: cp.async.wait_group -> fence.proxy.async.shared::cta (generic-proxy
//    writes made visible to wgmma's async proxy) -> __syncthreads -> wgmma.fence -> HD/32 x wgmma(Q.K~)
//    -> commit -> wait_group 0 -> softmax, O rescaled -> wgmma.fence (P and O were written by
//    ordinary instructions) -> BN/16 x wgmma(P.V) -> commit -> wait_group 0 -> __syncthreads (the
//    stage may be overwritten).
//  overlapped (FlashAttention-3's intra-warpgroup pipelining), 3 stages: with P_i in registers and
//    tile i+1 resident, issue Q.K~_{i+1} (group 1) then P_i.V_i (group 2); wait_group 1 (S_{i+1}
//    done while P.V still runs) -> softmax of S_{i+1} into a second P buffer -> wait_group 0 -> O
//    rescaled by the new maximum -> __syncthreads -> the freed stage takes tile i+3.
// Accumulators and register A operands are not touched between an mma_async and its wait.
// FP8 P.V (overlapped schedule only): P * 448 and V * 448 / max|v| (per channel) as e4m3, wgmma
// m64nNk32 e4m3 with P from registers; the epilogue scales O back.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_device.cuh"
#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/check.h"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "attention_sm90.cu uses wgmma: compile it for sm_90a only (-gencode=arch=compute_90a,code=sm_90a)"
#endif

namespace ff::cuda::sm90 {

namespace {

template <int HD, int WGS, int BN, bool OVERLAP, bool PV8>
struct Tiles {
  static constexpr int kStages = OVERLAP ? 3 : 2;
  static constexpr int kRows = WGS * 64;        // query rows per CTA
  static constexpr int kQBytes = kRows * HD;    // INT8 q
  static constexpr int kKBytes = BN * HD;       // INT8 k~ of one stage
  static constexpr int kStageBytes = kKBytes + BN * HD * (PV8 ? 1 : 2);  // + v (e4m3 v^T or bf16 v)
  static constexpr int kSmem = kQBytes + kStages * kStageBytes + 1024;  // + slack to align the base to 1024
  static_assert(kQBytes % 1024 == 0 && kKBytes % 1024 == 0, "every tile starts 1024-byte aligned");
};

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

// FP8 P.V (SageAttention2's route): P in [0, 1] is scaled by e4m3's largest value and V by
// max|v| / that value per channel, so that both use e4m3's range; O is divided back in the epilogue.
constexpr float kFp8Max = 448.0f;

// Four fp32 -> e4m3 (saturating), byte i = element i.
__device__ __forceinline__ uint32_t packE4m3(float x0, float x1, float x2, float x3) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(x0, x1), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(x2, x3), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// The A fragment of e4m3 m64nNk32 (per warp 16 rows, as mma.sync m16n8k32's 8-bit A): a0 = row g,
// k 4c..4c+3 (byte i = k 4c+i), a1 = row g+8, same k, a2 = row g, k 16+4c.., a3 = row g+8, k 16+4c...
// Lane c holds S columns 8j + 2c + {0, 1}, so rather than moving bytes between lanes the keys of V^T
// are permuted: within each 32-key group, position 4c + i (+16) holds key 8 (i / 2) + 2c + (i % 2)
// (+16). This maps key t of a group (bits: t = 16 h + 8 b + 2 c + l) to its position.
__host__ __device__ constexpr int fp8KeySlot(int t) {
  return (t & ~15) | (((t >> 1) & 3) << 2) | (((t >> 3) & 1) << 1) | (t & 1);
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

// Online softmax of one thread's rows g and g + 8 (base 2).
struct RowState {
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
};

// P registers of one tile: bf16 pairs (k16 steps) or e4m3 quads (k32 steps).
template <int BN, bool PV8>
using PFrag = uint32_t[PV8 ? BN / 32 : BN / 16][4];

// One thread's P values of a tile, in the S accumulator's order (s[4j + e]: chunk j, e as in the
// map at the top), -> the A fragments of P.V.
template <int BN, bool PV8>
__device__ __forceinline__ void packP(const float (&s)[BN / 2], PFrag<BN, PV8>& pf) {
  if constexpr (PV8) {
    // Keys 32kk..32kk+31 are S chunks 4kk..4kk+3 (16 values per thread): see fp8KeySlot.
#pragma unroll
    for (int kk = 0; kk < BN / 32; ++kk) {
      const float* x = s + 16 * kk;
      pf[kk][0] = packE4m3(x[0] * kFp8Max, x[1] * kFp8Max, x[4] * kFp8Max, x[5] * kFp8Max);
      pf[kk][1] = packE4m3(x[2] * kFp8Max, x[3] * kFp8Max, x[6] * kFp8Max, x[7] * kFp8Max);
      pf[kk][2] = packE4m3(x[8] * kFp8Max, x[9] * kFp8Max, x[12] * kFp8Max, x[13] * kFp8Max);
      pf[kk][3] = packE4m3(x[10] * kFp8Max, x[11] * kFp8Max, x[14] * kFp8Max, x[15] * kFp8Max);
    }
  } else {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      pf[kk][0] = packBf16(s[8 * kk], s[8 * kk + 1]);
      pf[kk][1] = packBf16(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = packBf16(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = packBf16(s[8 * kk + 6], s[8 * kk + 7]);
    }
  }
}

// The int32 scores of the tile at key k0 -> P (A fragments of P.V); updates the running maxima and
// sums and returns the factors (rows g, g + 8) that rescale O to the new maxima.
template <int BN, bool PV8>
__device__ __forceinline__ float2 softmaxTile(const int (&acc)[BN / 2], PFrag<BN, PV8>& pf, RowState& st,
                                              const SageArgs& a, int h, float qs, int k0, int c4) {
  constexpr int kChunks = BN / 8;
  const int kb = k0 / 64;
  const float ks0 = a.kScale[h * a.kBlocks + kb];
  const float ks1 = BN == 128 ? a.kScale[h * a.kBlocks + min(kb + 1, a.kBlocks - 1)] : ks0;
  float s[BN / 2];
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const float sc = qs * (j < 8 ? ks0 : ks1);
#pragma unroll
    for (int e = 0; e < 4; ++e) s[4 * j + e] = static_cast<float>(acc[4 * j + e]) * sc;
  }
  if (k0 + BN > a.nK) {
#pragma unroll
    for (int j = 0; j < kChunks; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (k0 + 8 * j + 2 * c4 + (e & 1) >= a.nK) s[4 * j + e] = -INFINITY;
  }
  float mx0 = st.m0, mx1 = st.m1;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    mx0 = fmaxf(mx0, fmaxf(s[4 * j], s[4 * j + 1]));
    mx1 = fmaxf(mx1, fmaxf(s[4 * j + 2], s[4 * j + 3]));
  }
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
  const float2 alpha = make_float2(exp2f(st.m0 - mx0), exp2f(st.m1 - mx1));
  st.m0 = mx0;
  st.m1 = mx1;
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    s[4 * j] = exp2f(s[4 * j] - mx0);
    s[4 * j + 1] = exp2f(s[4 * j + 1] - mx0);
    s[4 * j + 2] = exp2f(s[4 * j + 2] - mx1);
    s[4 * j + 3] = exp2f(s[4 * j + 3] - mx1);
    sum0 += s[4 * j] + s[4 * j + 1];
    sum1 += s[4 * j + 2] + s[4 * j + 3];
  }
  st.l0 = st.l0 * alpha.x + sum0;
  st.l1 = st.l1 * alpha.y + sum1;
  packP<BN, PV8>(s, pf);
  return alpha;
}

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

template <int HD, int WGS, int BN, bool OVERLAP, bool PV8>
__global__ void __launch_bounds__(WGS * 128, 1) sageWgmmaKernel(SageArgs a) {
  using T = Tiles<HD, WGS, BN, OVERLAP, PV8>;
  static_assert(OVERLAP || !PV8, "FP8 P.V runs on the overlapped schedule only");
  constexpr int kThreads = WGS * 128;
  static_assert(BN == 64 || BN == 128, "key tile of 64 or 128");
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const uint32_t sStages = sQ + T::kQBytes;

  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, c4 = lane & 3;
  const int h = blockIdx.y, q0 = blockIdx.x * T::kRows;
  const auto* gq = reinterpret_cast<const uint8_t*>(a.q + h * a.qHead);  // INT8: elements are bytes
  const auto* gk = reinterpret_cast<const uint8_t*>(a.k + h * a.kHead);
  const auto* gv = static_cast<const uint8_t*>(a.v) + h * a.vHead * 2;
  const uint8_t* gvt = PV8 ? a.vt8 + static_cast<int64_t>(h) * HD * a.vtRow : nullptr;
  // 64-key tiles walk SLA's block list of this query block; 128-key tiles all keys.
  constexpr bool kSparse = BN == 64;
  const int32_t* list = kSparse ? a.blocks + (static_cast<int64_t>(h) * a.qBlocks + blockIdx.x) * a.kc : nullptr;
  const int nTiles = kSparse ? a.kc : (a.nK + BN - 1) / BN;
  auto tileStart = [&](int i) { return kSparse ? list[i] * 64 : i * BN; };
  auto stageK = [&](int i) { return sStages + (i % T::kStages) * T::kStageBytes; };

  // Rows past the sequence are zero-filled: zero q rows give finite scores, zero v rows keep masked
  // keys (P = 0) from multiplying garbage.
  loadKMajor<HD, T::kRows, kThreads>(sQ, gq, a.qTok, q0, a.nQ, tid);
  // Tile i into its stage (nothing past the last tile); the caller commits the group.
  auto loadKV = [&](int i) {
    if (i >= nTiles) return;
    const int k0 = tileStart(i);
    loadKMajor<HD, BN, kThreads>(stageK(i), gk, a.kTok, k0, a.nK, tid);
    if constexpr (PV8) loadKMajor<BN, HD, kThreads>(stageK(i) + T::kKBytes, gvt + k0, a.vtRow, 0, HD, tid);
    else loadV<HD, BN, kThreads>(stageK(i) + T::kKBytes, gv, a.vTok * 2, k0, a.nK, tid);
  };

  const float qs = a.qScale[h * a.qBlocks + min((q0 + wg * 64) / 64, a.qBlocks - 1)];
  const uint32_t sQw = sQ + wg * 64 * HD;  // this warpgroup's 64 rows (8 swizzle atoms)
  float o[HD / 2];
  int acc[BN / 2];
  PFrag<BN, PV8> pf, pn;  // P of the current tile; the overlapped schedule's next P
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[i] = 0.0f;
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0;
  RowState st;

  if constexpr (!OVERLAP) {
    loadKV(0);
    cpCommit();
    for (int i = 0; i < nTiles; ++i) {
      loadKV(i + 1);
      cpCommit();
      cpWait<1>();
      fenceProxyAsync();
      __syncthreads();
      const uint32_t sK = stageK(i);
      wgFence();
      issueQK<HD, BN>(acc, sQw, sK);
      wgCommit();
      wgWait<0>();
      pinRegs(acc);
      rescaleRows<HD>(o, softmaxTile<BN, PV8>(acc, pf, st, a, h, qs, tileStart(i), c4));
      pinRegs(o);
      wgFence();
      issuePV<HD, BN>(o, pf, sK + T::kKBytes);
      wgCommit();
      wgWait<0>();
      pinRegs(o);
      __syncthreads();
    }
  } else {
    // Prologue: tiles 0, 1, 2 in flight (one commit group each, empty past the last), S_0 -> P_0.
    loadKV(0);
    cpCommit();
    loadKV(1);
    cpCommit();
    loadKV(2);
    cpCommit();
    cpWait<2>();
    fenceProxyAsync();
    __syncthreads();
    wgFence();
    issueQK<HD, BN>(acc, sQw, stageK(0));
    wgCommit();
    wgWait<0>();
    pinRegs(acc);
    softmaxTile<BN, PV8>(acc, pf, st, a, h, qs, tileStart(0), c4);  // O is zero: no rescale
    // One step: P_i (pin) . V_i overlapped with S_{i+1} -> P_{i+1} (pout). P alternates between two
    // register sets so that the one an in-flight P.V reads is never written.
    auto issueP = [&](const PFrag<BN, PV8>& pin, uint32_t sV) {
      if constexpr (PV8) issuePV8<HD, BN>(o, pin, sV);
      else issuePV<HD, BN>(o, pin, sV);
    };
    auto step = [&](int i, const PFrag<BN, PV8>& pin, PFrag<BN, PV8>& pout) {
      cpWait<1>();  // tile i + 1 resident (tile i + 2 may still be in flight)
      fenceProxyAsync();
      __syncthreads();
      pinRegs(o);
      wgFence();
      issueQK<HD, BN>(acc, sQw, stageK(i + 1));
      wgCommit();
      issueP(pin, stageK(i) + T::kKBytes);
      wgCommit();
      wgWait<1>();  // S_{i+1} done; P_i . V_i may still run
      pinRegs(acc);
      const float2 alpha = softmaxTile<BN, PV8>(acc, pout, st, a, h, qs, tileStart(i + 1), c4);
      wgWait<0>();
      pinRegs(o);
      rescaleRows<HD>(o, alpha);
      __syncthreads();  // every warpgroup is done with stage i
      loadKV(i + 3);
      cpCommit();
    };
    auto lastPV = [&](int i, const PFrag<BN, PV8>& pin) {
      pinRegs(o);
      wgFence();
      issueP(pin, stageK(i) + T::kKBytes);
      wgCommit();
      wgWait<0>();
      pinRegs(o);
    };
    int i = 0;
    for (; i + 2 < nTiles; i += 2) {
      step(i, pf, pn);
      step(i + 1, pn, pf);
    }
    if (i + 1 < nTiles) {
      step(i, pf, pn);
      lastPV(i + 1, pn);
    } else {
      lastPV(i, pf);
    }
  }

  float l0 = st.l0, l1 = st.l1;
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  const int r0 = q0 + wg * 64 + warp * 16 + g, r1 = r0 + 8;
  auto* go = static_cast<uint8_t*>(a.out) + h * a.oHead * 2;
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) {
    const int col = 8 * n + 2 * c4;
    if constexpr (PV8) {  // undo the e4m3 scales: P by kFp8Max, V by its channel's max|v| / kFp8Max
      const float v0 = __int_as_float(a.vAmax[h * HD + col]) / (kFp8Max * kFp8Max);
      const float v1 = __int_as_float(a.vAmax[h * HD + col + 1]) / (kFp8Max * kFp8Max);
      o[4 * n] *= v0;
      o[4 * n + 1] *= v1;
      o[4 * n + 2] *= v0;
      o[4 * n + 3] *= v1;
    }
    if (r0 < a.nQ) *reinterpret_cast<uint32_t*>(go + r0 * a.oTok * 2 + col * 2) = packBf16(o[4 * n] * inv0, o[4 * n + 1] * inv0);
    if (r1 < a.nQ) *reinterpret_cast<uint32_t*>(go + r1 * a.oTok * 2 + col * 2) = packBf16(o[4 * n + 2] * inv1, o[4 * n + 3] * inv1);
  }
}

template <int HD, int WGS, int BN, bool OVERLAP, bool PV8>
void launch(const SageArgs& a, int rowBlocks, cudaStream_t stream) {
  constexpr int smem = Tiles<HD, WGS, BN, OVERLAP, PV8>::kSmem;
  static bool configured = false;
  if (!configured) {
    FF_CUDA(cudaFuncSetAttribute(sageWgmmaKernel<HD, WGS, BN, OVERLAP, PV8>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  sageWgmmaKernel<HD, WGS, BN, OVERLAP, PV8><<<dim3(rowBlocks, a.heads), WGS * 128, smem, stream>>>(a);
  FF_CUDA_LAUNCHED("sageWgmmaKernel");
}

// Dense attention (2 warpgroups, 128-key tiles) or SLA's sparse branch (1 warpgroup per 64-row
// query block, 64-key tiles), each on the overlapped or the serial schedule.
// FF_CUDA_WGMMA_SERIAL=1: the serial schedule; FF_CUDA_WGMMA_PV=fp8: e4m3 P.V (overlapped schedule).
enum class PvMode { Bf16, Bf16Serial, Fp8 };

PvMode pvMode() {
  const char* pv = std::getenv("FF_CUDA_WGMMA_PV");
  const std::string p = pv ? pv : "";
  if (!p.empty() && p != "bf16" && p != "fp8") throw std::invalid_argument("FF_CUDA_WGMMA_PV must be bf16 or fp8, got '" + p + "'");
  if (p == "fp8") return PvMode::Fp8;
  const char* serial = std::getenv("FF_CUDA_WGMMA_SERIAL");
  return serial != nullptr && serial[0] == '1' ? PvMode::Bf16Serial : PvMode::Bf16;
}

template <int HD, int WGS, int BN>
void launchSchedule(const SageArgs& a, int rowBlocks, PvMode mode, cudaStream_t stream) {
  if (mode == PvMode::Fp8) launch<HD, WGS, BN, true, true>(a, rowBlocks, stream);
  else if (mode == PvMode::Bf16Serial) launch<HD, WGS, BN, false, false>(a, rowBlocks, stream);
  else launch<HD, WGS, BN, true, false>(a, rowBlocks, stream);
}

template <int HD>
void launchHd(const SageArgs& a, PvMode mode, cudaStream_t stream) {
  if (a.blocks) launchSchedule<HD, 1, 64>(a, a.qBlocks, mode, stream);
  else launchSchedule<HD, 2, 128>(a, (a.nQ + 127) / 128, mode, stream);
}

// Per-(head, channel) max |v| into amaxBits (zeroed; non-negative floats order as their bits).
template <int HD>
__global__ void vAbsMaxKernel(const __nv_bfloat16* v, int64_t head, int64_t tok, int n, int* amaxBits) {
  const int h = blockIdx.x, d = threadIdx.x;
  float m = 0.0f;
  for (int t = blockIdx.y; t < n; t += gridDim.y) m = fmaxf(m, fabsf(__bfloat162float(v[h * head + static_cast<int64_t>(t) * tok + d])));
  atomicMax(amaxBits + h * HD + d, __float_as_int(m));
}

// v -> vt8 [heads, HD, rowBytes] e4m3: v * kFp8Max / max|v| of its channel, keys placed by
// fp8KeySlot within their 32-key group, zero past n. One CTA per (64 keys, head); the grid covers
// rowBytes, so the padding every 128-key tile may read is zero too.
template <int HD>
__global__ void __launch_bounds__(256) vTransposeFp8Kernel(const __nv_bfloat16* v, int64_t head, int64_t tok, int n,
                                                           const int* amaxBits, uint8_t* vt8, int64_t rowBytes) {
  __shared__ __align__(16) uint8_t tile[HD][64];
  const int b = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  for (int i = tid; i < 64 * HD; i += 256) {
    const int t = i / HD, d = i % HD, key = b * 64 + t;
    const float amax = __int_as_float(amaxBits[h * HD + d]);
    const float x = key < n && amax > 0.0f ? __bfloat162float(v[h * head + static_cast<int64_t>(key) * tok + d]) * (kFp8Max / amax) : 0.0f;
    tile[d][fp8KeySlot(t)] = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
  }
  __syncthreads();
  for (int i = tid; i < HD * 4; i += 256) {
    const int d = i >> 2, c = i & 3;
    *reinterpret_cast<uint4*>(vt8 + (static_cast<int64_t>(h) * HD + d) * rowBytes + b * 64 + c * 16) =
        *reinterpret_cast<const uint4*>(&tile[d][c * 16]);
  }
}

template <int HD>
void prepareFp8V(const SageArgs& a, cudaStream_t stream) {
  FF_CUDA(cudaMemsetAsync(a.vAmax, 0, sizeof(int) * a.heads * HD, stream));
  const auto* v = static_cast<const __nv_bfloat16*>(a.v);
  vAbsMaxKernel<HD><<<dim3(a.heads, std::min(64, a.nK)), HD, 0, stream>>>(v, a.vHead, a.vTok, a.nK, a.vAmax);
  FF_CUDA_LAUNCHED("vAbsMaxKernel");
  vTransposeFp8Kernel<HD><<<dim3(static_cast<int>(a.vtRow / 64), a.heads), 256, 0, stream>>>(v, a.vHead, a.vTok, a.nK,
                                                                                             a.vAmax, a.vt8, a.vtRow);
  FF_CUDA_LAUNCHED("vTransposeFp8Kernel");
}

// One tile of each product through the same helpers as sageWgmmaKernel, for the tests: inputs
// copied into the swizzled layouts, P's A fragments read from global memory by the documented
// register map, results written out by the documented accumulator map.
template <int HD, int BN>
__global__ void __launch_bounds__(128, 1) probeKernel(const uint8_t* q, const uint8_t* k, const uint32_t* p,
                                                      const uint8_t* v, int32_t* s, float* o) {
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u, sK = sQ + 64 * HD, sV = sK + BN * HD;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c4 = lane & 3;
  loadKMajor<HD, 64, 128>(sQ, q, HD, 0, 64, tid);
  loadKMajor<HD, BN, 128>(sK, k, HD, 0, BN, tid);
  loadV<HD, BN, 128>(sV, v, HD * 2, 0, BN, tid);
  cpCommit();
  cpWait<0>();
  fenceProxyAsync();
  __syncthreads();
  // p: [64, BN] bf16 as b32 pairs, BN / 2 per row.
  const int row = warp * 16 + g;
  uint32_t pf[BN / 16][4];
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) {
    const int pair = kk * 8 + c4;
    pf[kk][0] = p[row * (BN / 2) + pair];
    pf[kk][1] = p[(row + 8) * (BN / 2) + pair];
    pf[kk][2] = p[row * (BN / 2) + pair + 4];
    pf[kk][3] = p[(row + 8) * (BN / 2) + pair + 4];
  }
  int acc[BN / 2];
  float oacc[HD / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0;
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) oacc[i] = 0.0f;
  wgFence();
  issueQK<HD, BN>(acc, sQ, sK);
  wgCommit();
  issuePV<HD, BN>(oacc, pf, sV);
  wgCommit();
  wgWait<0>();
  pinRegs(acc);
  pinRegs(oacc);
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) s[(row + 8 * ((i >> 1) & 1)) * BN + 8 * (i >> 2) + 2 * c4 + (i & 1)] = acc[i];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[(row + 8 * ((i >> 1) & 1)) * HD + 8 * (i >> 2) + 2 * c4 + (i & 1)] = oacc[i];
}

template <int HD, int BN>
void launchProbe(const void* q, const void* k, const void* p, const void* v, int32_t* s, float* o, cudaStream_t stream) {
  constexpr int smem = 64 * HD + BN * HD * 3 + 1024;
  FF_CUDA(cudaFuncSetAttribute(probeKernel<HD, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  probeKernel<HD, BN><<<1, 128, smem, stream>>>(static_cast<const uint8_t*>(q), static_cast<const uint8_t*>(k),
                                                static_cast<const uint32_t*>(p), static_cast<const uint8_t*>(v), s, o);
  FF_CUDA_LAUNCHED("probeKernel");
}

// FP8 P.V alone, for the tests: p [64, BN] fp32 read by the accumulator map (as S would be) and
// packed by packP, V^T from vt8 in prepareFp8V's layout; o = the raw accumulator [64, HD].
template <int HD, int BN>
__global__ void __launch_bounds__(128, 1) probeFp8Kernel(const float* p, const uint8_t* vt8, int64_t vtRow, float* o) {
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sVt = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c4 = lane & 3;
  loadKMajor<BN, HD, 128>(sVt, vt8, vtRow, 0, HD, tid);
  cpCommit();
  cpWait<0>();
  fenceProxyAsync();
  __syncthreads();
  const int row = warp * 16 + g;
  float s[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) s[i] = p[(row + 8 * ((i >> 1) & 1)) * BN + 8 * (i >> 2) + 2 * c4 + (i & 1)];
  PFrag<BN, true> pf;
  packP<BN, true>(s, pf);
  float oacc[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) oacc[i] = 0.0f;
  wgFence();
  issuePV8<HD, BN>(oacc, pf, sVt);
  wgCommit();
  wgWait<0>();
  pinRegs(oacc);
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[(row + 8 * ((i >> 1) & 1)) * HD + 8 * (i >> 2) + 2 * c4 + (i & 1)] = oacc[i];
}

template <int HD, int BN>
void launchProbeFp8(const float* p, const void* v, float* o, void* scratch, cudaStream_t stream) {
  SageArgs a{};
  a.v = v;
  a.vTok = HD;
  a.heads = 1;
  a.nK = BN;
  a.headDim = HD;
  a.vt8 = static_cast<uint8_t*>(scratch);
  a.vtRow = 128;
  a.vAmax = reinterpret_cast<int*>(a.vt8 + HD * 128);
  prepareFp8V<HD>(a, stream);
  constexpr int smem = HD * BN + 1024;
  probeFp8Kernel<HD, BN><<<1, 128, smem, stream>>>(p, a.vt8, a.vtRow, o);
  FF_CUDA_LAUNCHED("probeFp8Kernel");
}

}  // namespace

void probeTileFp8(int hd, int bn, const float* p, const void* v, float* o, void* scratch, CUstream_st* stream) {
  if (!available(hd) || (bn != 64 && bn != 128))
    throw std::invalid_argument("wgmma FP8 probe: needs an sm_90 device, head_dim 64 or 128 and 64 or 128 keys");
  if (hd == 64 && bn == 64) launchProbeFp8<64, 64>(p, v, o, scratch, stream);
  else if (hd == 64) launchProbeFp8<64, 128>(p, v, o, scratch, stream);
  else if (bn == 64) launchProbeFp8<128, 64>(p, v, o, scratch, stream);
  else launchProbeFp8<128, 128>(p, v, o, scratch, stream);
}

void probeTile(int hd, int bn, const int8_t* q, const int8_t* k, const void* p, const void* v, int32_t* s, float* o,
               CUstream_st* stream) {
  if (!available(hd) || (bn != 64 && bn != 128))
    throw std::invalid_argument("wgmma probe: needs an sm_90 device, head_dim 64 or 128 and 64 or 128 keys, got head_dim " +
                                std::to_string(hd) + ", " + std::to_string(bn) + " keys");
  if (hd == 64 && bn == 64) launchProbe<64, 64>(q, k, p, v, s, o, stream);
  else if (hd == 64) launchProbe<64, 128>(q, k, p, v, s, o, stream);
  else if (bn == 64) launchProbe<128, 64>(q, k, p, v, s, o, stream);
  else launchProbe<128, 128>(q, k, p, v, s, o, stream);
}

bool available(int headDim) {
  static const bool hopper = [] {
    int dev = 0, major = 0, minor = 0;
    FF_CUDA(cudaGetDevice(&dev));
    FF_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    FF_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    return major == 9 && minor == 0;
  }();
  return hopper && (headDim == 64 || headDim == 128);
}

void sageAttention(const SageArgs& a, CUstream_st* stream) {
  if (!available(a.headDim))
    throw std::invalid_argument("wgmma attention needs an sm_90 device and head_dim 64 or 128, got head_dim " +
                                std::to_string(a.headDim));
  const PvMode mode = pvMode();
  if (mode == PvMode::Fp8) {
    if (!a.vt8 || !a.vAmax || a.vtRow < (a.nK + 127) / 128 * 128) throw std::invalid_argument("wgmma FP8 P.V: no V^T workspace");
    if (a.headDim == 64) prepareFp8V<64>(a, stream);
    else prepareFp8V<128>(a, stream);
  }
  if (a.headDim == 64) launchHd<64>(a, mode, stream);
  else launchHd<128>(a, mode, stream);
}

}  // namespace ff::cuda::sm90
