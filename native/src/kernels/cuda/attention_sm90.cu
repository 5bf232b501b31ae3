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
// Shared-memory layouts (every tile 1024-byte aligned; "swz(r, c)" = 16-byte chunk c of row r of a
// tile with 128-byte rows, stored at r * 128 + ((c ^ (r & 7)) * 16): the 128B swizzle, bits 4-6 of
// the byte offset XORed with bits 7-9):
//   sQ  [WGS * 64 rows][128 B]  INT8 q, K-major A operand (row = query, 128 channels contiguous)
//   sK  [BN rows][128 B]        INT8 k~, K-major B operand (row = key)
//   sV  [2 halves][BN rows][128 B]  bf16 v: half c holds channels 64c..64c+63 of each key row;
//                               the MN-major ("transposed") B operand of P.V (N = channel contiguous)
// wgmma shared-memory descriptor (PTX ISA "Matrix Descriptor Format"): bits 0-13 start address >> 4,
// 16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4, 49-51 base offset (0: every
// swizzle pattern starts 1024-byte aligned), 62-63 swizzle (1 = 128B). Canonical 128B layouts in
// units of elements, T = 16 bytes / element size (CUTLASS's notation):
//   K-major  ((8, m), (T, 2k)) : ((8T, SBO), (1, T))    8 rows of 128 B, then SBO per 8 rows; LBO unused
//   MN-major ((T, 8, m), (8, k)) : ((1, T, LBO), (8T, SBO))  64 bf16 of N contiguous per 128-B row,
//            LBO between 64-column groups of N, 8 K-rows of 128 B, SBO between groups of 8 K-rows
// so Q and K~ use SBO = 1024 (LBO = 16, ignored) and step K by 32 bytes (one k32 INT8 slice) inside
// the swizzle row; V uses LBO = BN * 128 (the second channel half), SBO = 1024, and steps K by 16
// keys = 2048 bytes.
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
//    writes made visible to wgmma's async proxy) -> __syncthreads -> wgmma.fence -> 4 x wgmma(Q.K~)
//    -> commit -> wait_group 0 -> softmax, O rescaled -> wgmma.fence (P and O were written by
//    ordinary instructions) -> BN/16 x wgmma(P.V) -> commit -> wait_group 0 -> __syncthreads (the
//    stage may be overwritten).
//  overlapped (FlashAttention-3's intra-warpgroup pipelining), 3 stages: with P_i in registers and
//    tile i+1 resident, issue Q.K~_{i+1} (group 1) then P_i.V_i (group 2); wait_group 1 (S_{i+1}
//    done while P.V still runs) -> softmax of S_{i+1} into a second P buffer -> wait_group 0 -> O
//    rescaled by the new maximum -> __syncthreads -> the freed stage takes tile i+3.
// Accumulators and register A operands are not touched between an mma_async and its wait.
#include <cuda_bf16.h>

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

constexpr int kHeadDim = 128;  // one 128-byte swizzle row per INT8 q/k row

template <int WGS, int BN, bool OVERLAP>
struct Tiles {
  static constexpr int kStages = OVERLAP ? 3 : 2;
  static constexpr int kRows = WGS * 64;        // query rows per CTA
  static constexpr int kQBytes = kRows * 128;   // INT8 q
  static constexpr int kKBytes = BN * 128;      // INT8 k~ of one stage
  static constexpr int kVHalf = BN * 128;       // one 64-channel half of bf16 v
  static constexpr int kStageBytes = kKBytes + 2 * kVHalf;
  static constexpr int kSmem = kQBytes + kStages * kStageBytes + 1024;  // + slack to align the base to 1024
};

__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Byte offset of 16-byte chunk c (0..7) of row r in a 128B-swizzled tile of 128-byte rows.
__device__ __forceinline__ uint32_t swz128(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

__device__ __forceinline__ uint64_t smemDesc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (1ull << 62);
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
// (K-major). accumulate = 0 overwrites d. (One instruction per N: the operand count differs.)
template <int N>
__device__ __forceinline__ void wgmmaS8(int (&d)[N / 2], uint64_t a, uint64_t b, int accumulate);

template <>
__device__ __forceinline__ void wgmmaS8<128>(int (&d)[64], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 " FF_REGS64 ", %64, %65, p;\n}\n"
      : FF_OPS64(FF_RW_S32, d)
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmmaS8<64>(int (&d)[32], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 " FF_REGS32 ", %32, %33, p;\n}\n"
      : FF_OPS32(FF_RW_S32, d)
      : "l"(a), "l"(b), "r"(accumulate));
}

// d[64 x 128] += a[64 x 16] . b[16 x 128], bf16 in, fp32 out; a from registers, b from shared
// memory, MN-major (imm-trans-b = 1).
__device__ __forceinline__ void wgmmaBf16N128(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FF_REGS64 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : FF_OPS64(FF_RW_F32, d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

// S = Q . K~^T for one tile: four k32 slices of the 128 channels, 32 bytes apart inside each
// swizzle row. Issues only (no commit).
template <int BN>
__device__ __forceinline__ void issueQK(int (&acc)[BN / 2], uint32_t sQw, uint32_t sK) {
#pragma unroll
  for (int kk = 0; kk < kHeadDim / 32; ++kk)
    wgmmaS8<BN>(acc, smemDesc(sQw + kk * 32, 16, 1024), smemDesc(sK + kk * 32, 16, 1024), kk);
}

// O += P . V for one tile: 16 keys (2048 bytes of each V half) per step. Issues only.
template <int BN>
__device__ __forceinline__ void issuePV(float (&o)[64], const uint32_t (&pf)[BN / 16][4], uint32_t sV) {
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) wgmmaBf16N128(o, pf[kk], smemDesc(sV + kk * 2048, BN * 128, 1024));
}

// Online softmax of one thread's rows g and g + 8 (base 2).
struct RowState {
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
};

// The int32 scores of the tile at key k0 -> P (bf16 A fragments of P.V); updates the running
// maxima and sums and returns the factors (rows g, g + 8) that rescale O to the new maxima.
template <int BN>
__device__ __forceinline__ float2 softmaxTile(const int (&acc)[BN / 2], uint32_t (&pf)[BN / 16][4], RowState& st,
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
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) {
    pf[kk][0] = packBf16(s[8 * kk], s[8 * kk + 1]);
    pf[kk][1] = packBf16(s[8 * kk + 2], s[8 * kk + 3]);
    pf[kk][2] = packBf16(s[8 * kk + 4], s[8 * kk + 5]);
    pf[kk][3] = packBf16(s[8 * kk + 6], s[8 * kk + 7]);
  }
  return alpha;
}

__device__ __forceinline__ void rescaleRows(float (&o)[64], float2 alpha) {
#pragma unroll
  for (int n = 0; n < 16; ++n) {
    o[4 * n] *= alpha.x;
    o[4 * n + 1] *= alpha.x;
    o[4 * n + 2] *= alpha.y;
    o[4 * n + 3] *= alpha.y;
  }
}

template <int WGS, int BN, bool OVERLAP>
__global__ void __launch_bounds__(WGS * 128, 1) sageWgmmaKernel(SageArgs a) {
  using T = Tiles<WGS, BN, OVERLAP>;
  constexpr int kThreads = WGS * 128;
  static_assert(BN == 64 || BN == 128, "key tile of 64 or 128");
  static_assert(T::kRows * 8 % kThreads == 0 && BN * 8 % kThreads == 0, "tiles split evenly over the threads");
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const uint32_t sStages = sQ + T::kQBytes;

  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, c4 = lane & 3;
  const int h = blockIdx.y, q0 = blockIdx.x * T::kRows;
  const auto* gq = reinterpret_cast<const uint8_t*>(a.q + h * a.qHead);  // INT8: elements are bytes
  const auto* gk = reinterpret_cast<const uint8_t*>(a.k + h * a.kHead);
  const auto* gv = static_cast<const uint8_t*>(a.v) + h * a.vHead * 2;
  // 64-key tiles walk SLA's block list of this query block; 128-key tiles all keys.
  constexpr bool kSparse = BN == 64;
  const int32_t* list = kSparse ? a.blocks + (static_cast<int64_t>(h) * a.qBlocks + blockIdx.x) * a.kc : nullptr;
  const int nTiles = kSparse ? a.kc : (a.nK + BN - 1) / BN;
  auto tileStart = [&](int i) { return kSparse ? list[i] * 64 : i * BN; };
  auto stageK = [&](int i) { return sStages + (i % T::kStages) * T::kStageBytes; };

  // Rows past the sequence are zero-filled (cp.async with source size 0): zero q rows give finite
  // scores, zero v rows keep masked keys (P = 0) from multiplying garbage.
#pragma unroll
  for (int it = 0; it < T::kRows * 8 / kThreads; ++it) {
    const int i = tid + it * kThreads, r = i >> 3, c = i & 7;
    const bool ok = q0 + r < a.nQ;
    cpAsync16(sQ + swz128(r, c), ok ? gq + static_cast<int64_t>(q0 + r) * a.qTok + c * 16 : gq, ok);
  }
  // Tile i into its stage (nothing past the last tile); the caller commits the group.
  auto loadKV = [&](int i) {
    if (i >= nTiles) return;
    const int k0 = tileStart(i);
    const uint32_t sK = stageK(i), sV = sK + T::kKBytes;
#pragma unroll
    for (int it = 0; it < BN * 8 / kThreads; ++it) {
      const int x = tid + it * kThreads, r = x >> 3, c = x & 7;
      const bool ok = k0 + r < a.nK;
      cpAsync16(sK + swz128(r, c), ok ? gk + static_cast<int64_t>(k0 + r) * a.kTok + c * 16 : gk, ok);
    }
#pragma unroll
    for (int it = 0; it < BN * 16 / kThreads; ++it) {
      const int x = tid + it * kThreads, r = x >> 4, c = x & 15;
      const bool ok = k0 + r < a.nK;
      cpAsync16(sV + (c >> 3) * T::kVHalf + swz128(r, c & 7), ok ? gv + static_cast<int64_t>(k0 + r) * a.vTok * 2 + c * 16 : gv,
                ok);
    }
  };

  const float qs = a.qScale[h * a.qBlocks + min((q0 + wg * 64) / 64, a.qBlocks - 1)];
  const uint32_t sQw = sQ + wg * 64 * 128;  // this warpgroup's 64 rows (8 swizzle atoms)
  float o[64];
  int acc[BN / 2];
  uint32_t pf[BN / 16][4], pn[BN / 16][4];  // P of the current tile; the overlapped schedule's next P
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
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
      issueQK<BN>(acc, sQw, sK);
      wgCommit();
      wgWait<0>();
      pinRegs(acc);
      rescaleRows(o, softmaxTile<BN>(acc, pf, st, a, h, qs, tileStart(i), c4));
      pinRegs(o);
      wgFence();
      issuePV<BN>(o, pf, sK + T::kKBytes);
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
    issueQK<BN>(acc, sQw, stageK(0));
    wgCommit();
    wgWait<0>();
    pinRegs(acc);
    softmaxTile<BN>(acc, pf, st, a, h, qs, tileStart(0), c4);  // O is zero: no rescale
    // One step: P_i (pin) . V_i overlapped with S_{i+1} -> P_{i+1} (pout). P alternates between two
    // register sets so that the one an in-flight P.V reads is never written.
    auto step = [&](int i, const uint32_t (&pin)[BN / 16][4], uint32_t (&pout)[BN / 16][4]) {
      cpWait<1>();  // tile i + 1 resident (tile i + 2 may still be in flight)
      fenceProxyAsync();
      __syncthreads();
      pinRegs(o);
      wgFence();
      issueQK<BN>(acc, sQw, stageK(i + 1));
      wgCommit();
      issuePV<BN>(o, pin, stageK(i) + T::kKBytes);
      wgCommit();
      wgWait<1>();  // S_{i+1} done; P_i . V_i may still run
      pinRegs(acc);
      const float2 alpha = softmaxTile<BN>(acc, pout, st, a, h, qs, tileStart(i + 1), c4);
      wgWait<0>();
      pinRegs(o);
      rescaleRows(o, alpha);
      __syncthreads();  // every warpgroup is done with stage i
      loadKV(i + 3);
      cpCommit();
    };
    auto lastPV = [&](int i, const uint32_t (&pin)[BN / 16][4]) {
      pinRegs(o);
      wgFence();
      issuePV<BN>(o, pin, stageK(i) + T::kKBytes);
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
  for (int n = 0; n < 16; ++n) {
    const int col = 8 * n + 2 * c4;
    if (r0 < a.nQ) *reinterpret_cast<uint32_t*>(go + r0 * a.oTok * 2 + col * 2) = packBf16(o[4 * n] * inv0, o[4 * n + 1] * inv0);
    if (r1 < a.nQ) *reinterpret_cast<uint32_t*>(go + r1 * a.oTok * 2 + col * 2) = packBf16(o[4 * n + 2] * inv1, o[4 * n + 3] * inv1);
  }
}

template <int WGS, int BN, bool OVERLAP>
void launch(const SageArgs& a, int rowBlocks, cudaStream_t stream) {
  constexpr int smem = Tiles<WGS, BN, OVERLAP>::kSmem;
  static bool configured = false;
  if (!configured) {
    FF_CUDA(cudaFuncSetAttribute(sageWgmmaKernel<WGS, BN, OVERLAP>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  sageWgmmaKernel<WGS, BN, OVERLAP><<<dim3(rowBlocks, a.heads), WGS * 128, smem, stream>>>(a);
  FF_CUDA_LAUNCHED("sageWgmmaKernel");
}

}  // namespace

bool available(int headDim) {
  static const bool hopper = [] {
    int dev = 0, major = 0, minor = 0;
    FF_CUDA(cudaGetDevice(&dev));
    FF_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    FF_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    return major == 9 && minor == 0;
  }();
  return hopper && headDim == kHeadDim;
}

void sageAttention(const SageArgs& a, CUstream_st* stream) {
  if (!available(a.headDim))
    throw std::invalid_argument("wgmma attention needs an sm_90 device and head_dim 128, got head_dim " + std::to_string(a.headDim));
  const char* serialEnv = std::getenv("FF_CUDA_WGMMA_SERIAL");
  const bool serial = serialEnv != nullptr && serialEnv[0] == '1';
  const int denseCtas = (a.nQ + 127) / 128;
  if (a.blocks) {  // SLA's sparse branch: 64-key tiles, one warpgroup per 64-row query block
    if (serial) launch<1, 64, false>(a, a.qBlocks, stream);
    else launch<1, 64, true>(a, a.qBlocks, stream);
  } else {
    if (serial) launch<2, 128, false>(a, denseCtas, stream);
    else launch<2, 128, true>(a, denseCtas, stream);
  }
}

}  // namespace ff::cuda::sm90
