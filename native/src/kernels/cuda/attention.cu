// CUDA attention: flash (bf16), sage (INT8 Q.K^T) and SLA (block-sparse sage + linear branch).
// One tiled kernel serves all three: a CTA owns 16 query rows per warp, streams 64-key tiles of K
// and V through shared memory with cp.async (two stages), computes S = Q.K^T with mma.sync
// (bf16 m16n8k16 or s8 m16n8k32), runs the online softmax in registers (base 2) and accumulates
// P.V with bf16 mma.sync. SLA's linear branch is per-key-block state products (in the
// quantization kernel), their masked sums on cuBLAS and one small tensor-core kernel
// (linearOutKernel) per query block.
// Fragment layouts follow the PTX ISA's mma.sync tables; ldmatrix feeds every operand (8-bit
// operands are loaded as b16 pairs, which gives the s8 A/B fragment layout byte for byte).
// On Hopper (sm_90) Sage and SLA's sparse branch run on attention_sm90.cu's wgmma kernels unless
// FF_CUDA_ATTN_IMPL=mma keeps them here; dense bf16 likewise unless FF_CUDA_FLASH_IMPL=mma.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_device.cuh"
#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/env.h"

namespace ff::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLinearEps = 1e-5f;

enum class Mode { Flash, Sage };

// Full (dense) attention CTAs: 4 warps of 2 x 16 query rows. SLA keeps one 64-row query block per
// CTA (4 warps of 16 rows) since each query block has its own key blocks.
constexpr int kFullWarps = 4, kFullMT = 2;

struct KernelParams {
  const uint8_t* q;
  const uint8_t* k;
  const uint8_t* v;
  uint8_t* out;
  int64_t qHead, qTok, kHead, kTok, vHead, vTok, oHead, oTok;  // bytes
  int nQ, nK;
  float scaleLog2;       // Flash: softmax scale * log2(e)
  const float* qScale;   // Sage: [heads, qBlocks], softmax scale * log2(e) folded in
  const float* kScale;   // Sage: [heads, kBlocks]
  int qBlocks, kBlocks;  // 64-token blocks
  const int32_t* blocks; // [heads, qBlocks, kc] key tiles per 64-row query tile, or null (all)
  int kc;
};

__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}
__device__ __forceinline__ void ldsm4t(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}

__device__ __forceinline__ void mmaBf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mmaS8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}


// ROWS rows of ROWBYTES from g (row stride in bytes) starting at row0 into s (pitch PITCH); rows at
// or past nValid are zero-filled.
template <int ROWS, int ROWBYTES, int PITCH, int THREADS>
__device__ __forceinline__ void loadTile(uint8_t* s, const uint8_t* g, int64_t stride, int row0, int nValid,
                                         int tid) {
  constexpr int kChunks = ROWBYTES / 16;
  static_assert((ROWS * kChunks) % THREADS == 0, "tile must split evenly over the threads");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / THREADS; ++it) {
    const int i = tid + it * THREADS;
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = row0 + r < nValid;
    const uint8_t* src = ok ? g + static_cast<int64_t>(row0 + r) * stride + c * 16 : g;
    cpAsync16(smemAddr(s + r * PITCH + c * 16), src, ok);
  }
}

// o[16 x 8*NT] += a[16 x 16*KK] . V[16*KK rows of vs, pitch VP]; A fragments in registers.
template <int NT, int KK, int VP>
__device__ __forceinline__ void pvAccum(float (&o)[NT][4], const uint32_t (&a)[KK][4], const uint8_t* vs, int lane) {
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
    for (int dp = 0; dp < NT / 2; ++dp) {
      uint32_t b[4];
      ldsm4t(b, vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * VP + (dp * 16 + (lane >> 4) * 8) * 2);
      mmaBf16(o[2 * dp], a[kk], b[0], b[1]);
      mmaBf16(o[2 * dp + 1], a[kk], b[2], b[3]);
    }
  }
}

template <int HD, int WARPS, int MT, Mode M>
constexpr int attnSmemBytes() {
  constexpr int es = M == Mode::Sage ? 1 : 2;
  return (WARPS * 16 * MT + 2 * 64) * (HD * es + 16) + 2 * 64 * (HD * 2 + 16);
}

// WARPS warps, each owning MT tiles of 16 query rows (every K/V fragment read from shared memory
// feeds MT matrix products).
template <int HD, int WARPS, int MT, Mode M>
__global__ void __launch_bounds__(WARPS * 32, 1) attnKernel(KernelParams p) {
  constexpr int kThreads = WARPS * 32;
  constexpr int kBM = WARPS * 16 * MT;
  constexpr int kES = M == Mode::Sage ? 1 : 2;
  constexpr int kQKB = HD * kES, kQKP = kQKB + 16;
  constexpr int kVB = HD * 2, kVP = kVB + 16;
  constexpr int kKCH = kQKB / 32;  // 32-byte depth chunks of Q.K^T
  constexpr int kNT = HD / 8;      // 8-column chunks of the output
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* sQ = smem;
  uint8_t* sK = sQ + kBM * kQKP;
  uint8_t* sV = sK + 2 * 64 * kQKP;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, c4 = lane & 3;
  const int h = blockIdx.y, qt = blockIdx.x, q0 = qt * kBM;
  const int wrow = warp * 16 * MT;  // first row of this warp within the tile
  const uint8_t* gq = p.q + h * p.qHead;
  const uint8_t* gk = p.k + h * p.kHead;
  const uint8_t* gv = p.v + h * p.vHead;
  const int32_t* list = p.blocks ? p.blocks + (static_cast<int64_t>(h) * p.qBlocks + qt) * p.kc : nullptr;
  const int nTiles = list ? p.kc : (p.nK + 63) / 64;

  loadTile<kBM, kQKB, kQKP, kThreads>(sQ, gq, p.qTok, q0, p.nQ, tid);
  {
    const int t0 = list ? list[0] : 0;
    loadTile<64, kQKB, kQKP, kThreads>(sK, gk, p.kTok, t0 * 64, p.nK, tid);
    loadTile<64, kVB, kVP, kThreads>(sV, gv, p.vTok, t0 * 64, p.nK, tid);
  }
  cpCommit();

  // Q fragments are re-read from shared memory for every key tile (ldmatrix): holding them would
  // cost MT * kKCH * 4 registers and spill at head_dim 128.
  auto qFrag = [&](uint32_t (&a)[4], int mt, int c) {
    ldsm4(a, sQ + (wrow + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kQKP + c * 32 + (lane >> 4) * 16);
  };
  float o[MT][kNT][4];
  float mrow[MT][2], lrow[MT][2], qsc[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int n = 0; n < kNT; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
    mrow[mt][0] = mrow[mt][1] = -INFINITY;
    lrow[mt][0] = lrow[mt][1] = 0.0f;
    qsc[mt] = 1.0f;
    if constexpr (M == Mode::Sage) {
      const int qb = min((q0 + wrow + mt * 16) / 64, p.qBlocks - 1);
      qsc[mt] = p.qScale[h * p.qBlocks + qb];
    }
  }

  for (int i = 0; i < nTiles; ++i) {
    const int stage = i & 1;
    if (i + 1 < nTiles) {
      const int tn = list ? list[i + 1] : i + 1;
      loadTile<64, kQKB, kQKP, kThreads>(sK + (stage ^ 1) * 64 * kQKP, gk, p.kTok, tn * 64, p.nK, tid);
      loadTile<64, kVB, kVP, kThreads>(sV + (stage ^ 1) * 64 * kVP, gv, p.vTok, tn * 64, p.nK, tid);
      cpCommit();
      cpWait<1>();
    } else {
      cpWait<0>();
    }
    __syncthreads();
    const uint8_t* ks = sK + stage * 64 * kQKP;
    const uint8_t* vs = sV + stage * 64 * kVP;
    const int tile = list ? list[i] : i;

    float s[MT][8][4];
    if constexpr (M == Mode::Sage) {
      int acc[MT][8][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0;
#pragma unroll
      for (int c = 0; c < kKCH; ++c) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) qFrag(qa[mt], mt, c);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t b[4];
          ldsm4(b, ks + (np * 16 + (lane & 7) + (lane >> 4) * 8) * kQKP + c * 32 + ((lane >> 3) & 1) * 16);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mmaS8(acc[mt][2 * np], qa[mt], b[0], b[1]);
            mmaS8(acc[mt][2 * np + 1], qa[mt], b[2], b[3]);
          }
        }
      }
      const float ksc = p.kScale[h * p.kBlocks + tile];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][j][e] = static_cast<float>(acc[mt][j][e]) * (qsc[mt] * ksc);
    } else {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
#pragma unroll
      for (int c = 0; c < kKCH; ++c) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) qFrag(qa[mt], mt, c);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t b[4];
          ldsm4(b, ks + (np * 16 + (lane & 7) + (lane >> 4) * 8) * kQKP + c * 32 + ((lane >> 3) & 1) * 16);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mmaBf16(s[mt][2 * np], qa[mt], b[0], b[1]);
            mmaBf16(s[mt][2 * np + 1], qa[mt], b[2], b[3]);
          }
        }
      }
      if constexpr (M == Mode::Flash) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[mt][j][e] *= p.scaleLog2;
      }
    }

    const int kbase = tile * 64;
    if (kbase + 64 > p.nK) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (kbase + j * 8 + 2 * c4 + (e & 1) >= p.nK) s[mt][j][e] = -INFINITY;
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float mx0 = mrow[mt][0], mx1 = mrow[mt][1];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        mx0 = fmaxf(mx0, fmaxf(s[mt][j][0], s[mt][j][1]));
        mx1 = fmaxf(mx1, fmaxf(s[mt][j][2], s[mt][j][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float a0 = exp2f(mrow[mt][0] - mx0), a1 = exp2f(mrow[mt][1] - mx1);
      mrow[mt][0] = mx0;
      mrow[mt][1] = mx1;
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        s[mt][j][0] = exp2f(s[mt][j][0] - mx0);
        s[mt][j][1] = exp2f(s[mt][j][1] - mx0);
        s[mt][j][2] = exp2f(s[mt][j][2] - mx1);
        s[mt][j][3] = exp2f(s[mt][j][3] - mx1);
        sum0 += s[mt][j][0] + s[mt][j][1];
        sum1 += s[mt][j][2] + s[mt][j][3];
      }
      lrow[mt][0] = lrow[mt][0] * a0 + sum0;
      lrow[mt][1] = lrow[mt][1] * a1 + sum1;
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        o[mt][n][0] *= a0;
        o[mt][n][1] *= a0;
        o[mt][n][2] *= a1;
        o[mt][n][3] *= a1;
      }
    }

    // P.V: each V fragment feeds the MT row tiles.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t pf[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pf[mt][0] = packBf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pf[mt][1] = packBf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pf[mt][2] = packBf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pf[mt][3] = packBf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kNT / 2; ++dp) {
        uint32_t b[4];
        ldsm4t(b, vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kVP + (dp * 16 + (lane >> 4) * 8) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mmaBf16(o[mt][2 * dp], pf[mt], b[0], b[1]);
          mmaBf16(o[mt][2 * dp + 1], pf[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }

  uint8_t* go = p.out + h * p.oHead;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float l0 = lrow[mt][0], l1 = lrow[mt][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const int r0 = q0 + wrow + mt * 16 + g, r1 = r0 + 8;
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
#pragma unroll
    for (int n = 0; n < kNT; ++n) {
      const int col = n * 8 + 2 * c4;
      if (r0 < p.nQ)
        *reinterpret_cast<uint32_t*>(go + r0 * p.oTok + col * 2) = packBf16(o[mt][n][0] * inv0, o[mt][n][1] * inv0);
      if (r1 < p.nQ)
        *reinterpret_cast<uint32_t*>(go + r1 * p.oTok + col * 2) = packBf16(o[mt][n][2] * inv1, o[mt][n][3] * inv1);
    }
  }
}

struct QuantParams {
  const bf16* x;
  int64_t head, tok;  // elements
  int n, nBlocks;
  const float* ksum;  // k: subtract ksum / n (the smoothing mean); q: null
  int8_t* xq;         // [heads, nBlocks * 64, HD], zero past n
  float* scale;       // [heads, nBlocks], times scaleMul
  float scaleMul;
  float* pool;        // [heads, nBlocks, HD] block means (of k~ for k), or null
  // k with SLA's linear branch: phi = softmax over channels of k~ (bf16, zero past n) stays in
  // shared memory; states[h, j] = phi_j^T v_j (bf16 [HD, HD] row-major per block, rows = phi
  // channels) and zBlock[h, j] = phi_j's sums over tokens are written. states null: neither.
  const bf16* v;
  int64_t vHead, vTok;  // elements
  bf16* states;         // [heads, nBlocks, HD, HD]
  float* zBlock;        // [heads, nBlocks, HD]
  // With states, and vt8 non-null: v's block also as the sparse kernel's block-major e4m3 V^T
  // [heads, nBlocks, HD, 64] (vtScatter with vAmax, the per-channel max|v| float bits).
  const int* vAmax;
  uint8_t* vt8;
};

// Column sums over the CTA's 64 x HD tile: each thread holds 8 columns (chunk c) of some rows;
// out[d] = mul * sum (thread 0..HD-1 each write one). Every thread of the CTA must call it.
template <int HD>
__device__ __forceinline__ void blockColumnSums(const float (&v)[8], float (*part)[HD], float* out, float mul) {
  constexpr int kCh = HD / 8;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  float s[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    s[i] = v[i];
    // lanes lane, lane ^ kCh, ... hold the same columns of other rows
#pragma unroll
    for (int off = kCh; off < 32; off <<= 1) s[i] += __shfl_xor_sync(0xffffffffu, s[i], off);
  }
  if (lane < kCh)
#pragma unroll
    for (int i = 0; i < 8; ++i) part[warp][lane * 8 + i] = s[i];
  __syncthreads();
  if (tid < HD) {
    float t = 0.0f;
#pragma unroll
    for (int w = 0; w < 8; ++w) t += part[w][tid];
    out[tid] = t * mul;
  }
}

// One CTA of 256 threads per (64-token block, head, tensor: blockIdx.z 0 = q, 1 = k): smoothing,
// per-block INT8 quantization, block mean, and for SLA's linear branch phi, its per-block sums and
// the block state phi^T v. Each thread owns 16-byte chunks (8 channels) of 64 / (256 / (HD / 8))
// rows in registers: loads and stores are 16 or 8 bytes wide, and the softmax of a row runs within
// the HD / 8 lanes that hold it. The state is a [HD, 64] x [64, HD] product on bf16 mma.sync from
// the phi and v tiles in shared memory (phi through ldmatrix.trans as the A operand): computing it
// here spares the linear branch writing phi and reading it back.
__host__ __device__ constexpr int quantTilePitch(int hd) { return hd * 2 + 16; }

template <int HD>
__global__ void __launch_bounds__(256) quantKernel(const __grid_constant__ QuantParams pq,
                                                   const __grid_constant__ QuantParams pk, bool headsFirst) {
  constexpr int kCh = HD / 8, kRows = 256 / kCh, kPasses = 64 / kRows;
  constexpr int kTP = quantTilePitch(HD);  // row pitch (bytes) of the phi and v tiles
  __shared__ float red[8];
  __shared__ float part[8][HD];
  // The phi and v tiles (2 * 64 rows of kTP bytes): dynamic, launched only where the states are
  // formed, so that the plain quantization keeps its occupancy.
  extern __shared__ __align__(16) uint8_t quantTiles[];
  uint8_t* tiles = quantTiles;
  uint8_t* sPhi = tiles;
  uint8_t* sV = tiles + 64 * kTP;
  const QuantParams& p = blockIdx.z == 0 ? pq : pk;
  const int b = headsFirst ? blockIdx.y : blockIdx.x, h = headsFirst ? blockIdx.x : blockIdx.y;
  if (b >= p.nBlocks) return;  // the grid covers the longer of q and k
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, c = tid % kCh, r0 = tid / kCh;
  const int rows = min(64, p.n - b * 64);
  if (p.states) {  // v's block, zero past n, arrives while the block is quantized
    loadTile<64, HD * 2, kTP, 256>(sV, reinterpret_cast<const uint8_t*>(p.v + h * p.vHead), p.vTok * 2, b * 64, p.n, tid);
    cpCommit();
  }
  float mean[8] = {};
  if (p.ksum)
#pragma unroll
    for (int i = 0; i < 8; ++i) mean[i] = p.ksum[h * HD + c * 8 + i] / static_cast<float>(p.n);
  float x[kPasses][8];
  float amax = 0.0f;
#pragma unroll
  for (int it = 0; it < kPasses; ++it) {
    const int r = r0 + it * kRows;
    uint4 u = make_uint4(0, 0, 0, 0);
    if (r < rows) u = *reinterpret_cast<const uint4*>(p.x + h * p.head + static_cast<int64_t>(b * 64 + r) * p.tok + c * 8);
    const uint32_t wd[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = unpackBf16(wd[i]);
      x[it][2 * i] = r < rows ? f.x - mean[2 * i] : 0.0f;
      x[it][2 * i + 1] = r < rows ? f.y - mean[2 * i + 1] : 0.0f;
      amax = fmaxf(amax, fmaxf(fabsf(x[it][2 * i]), fabsf(x[it][2 * i + 1])));
    }
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if (lane == 0) red[warp] = amax;
  __syncthreads();
  amax = red[0];
#pragma unroll
  for (int w = 1; w < 8; ++w) amax = fmaxf(amax, red[w]);
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  if (tid == 0) p.scale[h * p.nBlocks + b] = amax / 127.0f * p.scaleMul;
  const int64_t row0 = static_cast<int64_t>(h) * p.nBlocks * 64 + b * 64;  // first row of the block in xq
#pragma unroll
  for (int it = 0; it < kPasses; ++it) {
    uint32_t packed[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; ++i)
      packed[i / 4] |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(__float2int_rn(x[it][i] * inv))))
                       << (8 * (i % 4));
    *reinterpret_cast<uint2*>(p.xq + (row0 + r0 + it * kRows) * HD + c * 8) = make_uint2(packed[0], packed[1]);
  }
  if (p.pool) {
    float s[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      s[i] = 0.0f;
#pragma unroll
      for (int it = 0; it < kPasses; ++it) s[i] += x[it][i];
    }
    blockColumnSums<HD>(s, part, p.pool + (static_cast<int64_t>(h) * p.nBlocks + b) * HD, 1.0f / static_cast<float>(rows));
  }
  if (!p.states) return;
  float z[8] = {};
#pragma unroll
  for (int it = 0; it < kPasses; ++it) {
    const int r = r0 + it * kRows;
    float mx = x[it][0];
#pragma unroll
    for (int i = 1; i < 8; ++i) mx = fmaxf(mx, x[it][i]);
#pragma unroll
    for (int off = 1; off < kCh; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float e[8], sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      e[i] = __expf(x[it][i] - mx);
      sum += e[i];
    }
#pragma unroll
    for (int off = 1; off < kCh; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const float scale = r < rows ? 1.0f / sum : 0.0f;
    uint32_t packed[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      packed[i] = packBf16(e[2 * i] * scale, e[2 * i + 1] * scale);
      const float2 y = unpackBf16(packed[i]);
      z[2 * i] += y.x;
      z[2 * i + 1] += y.y;
    }
    *reinterpret_cast<uint4*>(sPhi + r * kTP + c * 16) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
  __syncthreads();  // part is reused
  blockColumnSums<HD>(z, part, p.zBlock + (static_cast<int64_t>(h) * p.nBlocks + b) * HD, 1.0f);
  cpWait<0>();
  __syncthreads();  // the phi and v tiles are complete
  // state = phi^T v: warp w owns 16 phi channels (m0) and kCols v channels (col0) of the [HD, HD]
  // result; A[m][t] = phi[t][m] comes from phi's rows through ldmatrix.trans.
  constexpr int kWarpsPerRow = 8 / (HD / 16), kCols = HD / kWarpsPerRow;
  const int m0 = warp / kWarpsPerRow * 16, col0 = warp % kWarpsPerRow * kCols;
  uint32_t a[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    ldsm4t(a[kk], sPhi + (kk * 16 + (lane >> 4) * 8 + (lane & 7)) * kTP + (m0 + ((lane >> 3) & 1) * 8) * 2);
  float o[kCols / 8][4];
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  pvAccum<kCols / 8, 4, kTP>(o, a, sV + col0 * 2, lane);
  bf16* st = p.states + (static_cast<int64_t>(h) * p.nBlocks + b) * HD * HD;
  const int g = lane >> 2, c4 = lane & 3;
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) {
    const int col = col0 + n * 8 + 2 * c4;
    *reinterpret_cast<uint32_t*>(st + (m0 + g) * HD + col) = packBf16(o[n][0], o[n][1]);
    *reinterpret_cast<uint32_t*>(st + (m0 + g + 8) * HD + col) = packBf16(o[n][2], o[n][3]);
  }
  if (!p.vt8) return;
  // v's block as e4m3 V^T, staged where phi was (the tile fits: HD * kVtPitch <= 64 * kTP).
  static_assert(HD * kVtPitch <= 64 * kTP, "the V^T tile fits in phi's");
  __syncthreads();  // every warp is done reading phi
  for (int x = tid; x < 64 * kCh; x += 256)
    vtScatter<HD>(*reinterpret_cast<const uint4*>(sV + (x / kCh) * kTP + (x % kCh) * 16), x / kCh, x % kCh,
                  p.vAmax + h * HD, sPhi);
  __syncthreads();
  vtStore<HD, 256>(sPhi, [&](int d) { return p.vt8 + ((static_cast<int64_t>(h) * p.nBlocks + b) * HD + d) * 64; }, tid);
}

// z_all[h, :] = sum over key blocks of zBlock[h, j, :]: one CTA of 1024 threads per head.
template <int HD>
__global__ void __launch_bounds__(1024) zAllKernel(const float* zBlock, int nBlocks, float* zall) {
  constexpr int kGroups = 1024 / HD;
  __shared__ float part[kGroups][HD];
  const int h = blockIdx.x, d = threadIdx.x % HD, g = threadIdx.x / HD;
  const float* z = zBlock + static_cast<int64_t>(h) * nBlocks * HD + d;
  float s = 0.0f;
#pragma unroll 8
  for (int j = g; j < nBlocks; j += kGroups) s += z[static_cast<int64_t>(j) * HD];
  part[g][d] = s;
  __syncthreads();
  if (g == 0) {
#pragma unroll
    for (int i = 1; i < kGroups; ++i) s += part[i][d];
    zall[h * HD + d] = s;
  }
}

// A float's bits mapped so that unsigned order is float order (+0 and -0 made equal first).
__device__ __forceinline__ uint32_t orderedKey(float f) {
  const uint32_t u = __float_as_uint(f == 0.0f ? 0.0f : f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kSelectWarps = 4;

// One warp per (query block, head) row of the pooled scores [rows, nbk]: the kc best key blocks
// (higher score first, ties to the lower index: the CPU engine's stable sort) written ascending to
// out[row, :kc]. The kc-th best key T is found bit by bit from the top (the largest T with at least
// kc keys >= T); the chosen blocks are those above T and the first ones equal to T. With mask
// (the linear branch), mask[row, j] = 0 for chosen blocks and 1 for the others (bf16, row pitch
// maskLd).
__global__ void __launch_bounds__(kSelectWarps * 32) slaSelectKernel(const float* scores, int rows, int nbk, int kc,
                                                                      int32_t* out, bf16* mask, int maskLd) {
  extern __shared__ uint32_t selKeys[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row = blockIdx.x * kSelectWarps + warp;
  if (row >= rows) return;  // no block-wide barrier below
  uint32_t* key = selKeys + warp * nbk;
  const float* src = scores + static_cast<int64_t>(row) * nbk;
  for (int j = lane; j < nbk; j += 32) key[j] = orderedKey(src[j]);
  __syncwarp();
  uint32_t t = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t cand = t | (1u << bit);
    int cnt = 0;
    for (int j = lane; j < nbk; j += 32) cnt += key[j] >= cand;
    if (__reduce_add_sync(0xffffffffu, cnt) >= kc) t = cand;
  }
  int above = 0;
  for (int j = lane; j < nbk; j += 32) above += key[j] > t;
  const int equalWanted = kc - __reduce_add_sync(0xffffffffu, above);
  const unsigned below = (1u << lane) - 1u;
  int32_t* sel = out + static_cast<int64_t>(row) * kc;
  bf16* maskRow = mask ? mask + static_cast<int64_t>(row) * maskLd : nullptr;
  int count = 0, equalSeen = 0;
  for (int base = 0; base < nbk; base += 32) {
    const int j = base + lane;
    const uint32_t kj = j < nbk ? key[j] : 0u;
    const bool eq = j < nbk && kj == t;
    const unsigned eqMask = __ballot_sync(0xffffffffu, eq);
    const bool chosen = (j < nbk && kj > t) || (eq && equalSeen + __popc(eqMask & below) < equalWanted);
    equalSeen += __popc(eqMask);
    const unsigned m = __ballot_sync(0xffffffffu, chosen);
    if (chosen) sel[count + __popc(m & below)] = j;
    count += __popc(m);
    if (maskRow && j < nbk) maskRow[j] = __float2bfloat16(chosen ? 0.0f : 1.0f);
  }
}

// slaSelectKernel with each lane's keys in registers (KPL per lane, nbk <= 32 * KPL): key j is
// lane j % 32's key[j / 32], as the shared-memory kernel walks them, so the same blocks come out in
// the same order; the bit search reads registers instead of shared memory 32 times.
template <int KPL>
__global__ void __launch_bounds__(kSelectWarps * 32) slaSelectRegKernel(const float* scores, int rows, int nbk, int kc,
                                                                         int32_t* out, bf16* mask, int maskLd) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row = blockIdx.x * kSelectWarps + warp;
  if (row >= rows) return;
  const float* src = scores + static_cast<int64_t>(row) * nbk;
  uint32_t key[KPL];
#pragma unroll
  for (int i = 0; i < KPL; ++i) {
    const int j = i * 32 + lane;
    key[i] = j < nbk ? orderedKey(src[j]) : 0u;  // 0 past nbk: below every candidate (>= 1) and every t tested
  }
  uint32_t t = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t cand = t | (1u << bit);
    int cnt = 0;
#pragma unroll
    for (int i = 0; i < KPL; ++i) cnt += key[i] >= cand;
    if (__reduce_add_sync(0xffffffffu, cnt) >= kc) t = cand;
  }
  int above = 0;
#pragma unroll
  for (int i = 0; i < KPL; ++i) above += i * 32 + lane < nbk && key[i] > t;
  const int equalWanted = kc - __reduce_add_sync(0xffffffffu, above);
  const unsigned below = (1u << lane) - 1u;
  int32_t* sel = out + static_cast<int64_t>(row) * kc;
  bf16* maskRow = mask ? mask + static_cast<int64_t>(row) * maskLd : nullptr;
  int count = 0, equalSeen = 0;
#pragma unroll
  for (int i = 0; i < KPL; ++i) {
    if (i * 32 >= nbk) break;
    const int j = i * 32 + lane;
    const uint32_t kj = key[i];
    const bool eq = j < nbk && kj == t;
    const unsigned eqMask = __ballot_sync(0xffffffffu, eq);
    const bool chosen = (j < nbk && kj > t) || (eq && equalSeen + __popc(eqMask & below) < equalWanted);
    equalSeen += __popc(eqMask);
    const unsigned m = __ballot_sync(0xffffffffu, chosen);
    if (chosen) sel[count + __popc(m & below)] = j;
    count += __popc(m);
    if (maskRow && j < nbk) maskRow[j] = __float2bfloat16(chosen ? 0.0f : 1.0f);
  }
}

// SLA's linear branch for one (query block, head) of a chunk of heads: out[rows] (+)= (phi(q) H_R /
// (phi(q) . z_R + eps)) proj_l^T, added to the sparse output when accumulate, else written for the
// wgmma sparse kernel to add to, with H_R = hR[head, block] (bf16 [HD, HD], the sum of the block
// states phi(k~_j)^T v_j over the unselected key blocks) and z_R = z_all - the selected blocks'
// zBlock. phi(q) (softmax over channels, bf16) is computed here from q; both products run on
// tensor cores with H_R, then proj_l (in H_R's place), as the B operand from shared memory: proj_l
// applied to the [64, HD] result instead of to every v row spares the branch a pass over v. 4 warps
// of 16 rows.
struct LinearOutParams {
  const bf16* q;
  int64_t qHead, qTok;   // elements
  bf16* out;
  int64_t oHead, oTok;   // elements
  int n, nBlocks, kc, head0;
  const bf16* hR;        // [chunk heads, nBlocks, HD, HD]
  const float* zall;     // [heads, HD]
  const float* zBlock;   // [heads, nBlocks, HD]
  const int32_t* blocks; // [heads, nBlocks, kc]
  const bf16* projL;     // [HD, HD] row-major (out channel, in channel)
  bool accumulate;       // add to the sparse output in out; false: write
  bool headsFirst;       // grid (heads, blocks) instead of (blocks, heads): attnHeadsFirst()
};

// phi(q) and H_R tiles (16-byte padded rows), z_R, the denominators, the selected list (kc <= nb).
template <int HD>
int linearOutSmemBytes(int nb) {
  return (64 + HD) * (HD * 2 + 16) + (HD + 64 + nb) * 4;
}

template <int HD>
__global__ void __launch_bounds__(128, 4) linearOutKernel(LinearOutParams p) {
  constexpr int kP = HD * 2 + 16;  // row pitch (bytes) of the phi(q) and H_R tiles
  constexpr int kKCH = HD / 16, kNT = HD / 8, kPer = HD / 32;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* sQ = smem;
  uint8_t* sH = sQ + 64 * kP;
  float* zR = reinterpret_cast<float*>(sH + HD * kP);
  float* den = zR + HD;
  const int b = p.headsFirst ? blockIdx.y : blockIdx.x, hl = p.headsFirst ? blockIdx.x : blockIdx.y, h = p.head0 + hl;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c4 = lane & 3;
  loadTile<HD, HD * 2, kP, 128>(sH, reinterpret_cast<const uint8_t*>(p.hR + (static_cast<int64_t>(hl) * p.nBlocks + b) * HD * HD),
                                HD * 2, 0, HD, tid);
  cpCommit();
  // This warp's 16 rows of q, loaded before anything waits on memory (zero past n).
  using Chunk = std::conditional_t<kPer == 4, uint2, uint32_t>;  // a lane's kPer channels
  Chunk raw[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int t = b * 64 + warp * 16 + i;
    raw[i] = Chunk{};
    if (t < p.n) raw[i] = *reinterpret_cast<const Chunk*>(p.q + h * p.qHead + static_cast<int64_t>(t) * p.qTok + lane * kPer);
  }
  int* list = reinterpret_cast<int*>(den + 64);  // the selected key blocks, then z_R = z_all - their sums
  for (int i = tid; i < p.kc; i += 128) list[i] = p.blocks[(static_cast<int64_t>(h) * p.nBlocks + b) * p.kc + i];
  __syncthreads();
  {
    // z_R = z_all - the selected blocks' zBlock rows. Thread t adds 4 channels (cv = t % kV) of
    // every kG-th selected block from t / kV with independent 16-byte loads (one thread per
    // channel over all kc blocks was a chain of dependent round trips); the kG partial sums meet in
    // sQ, not yet in use.
    constexpr int kV = HD / 4, kG = 128 / kV;
    const int cv = tid % kV, grp = tid / kV;
    const auto* zb = reinterpret_cast<const float4*>(p.zBlock + static_cast<int64_t>(h) * p.nBlocks * HD);
    float4 part = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 8
    for (int i = grp; i < p.kc; i += kG) {
      const float4 z = zb[static_cast<int64_t>(list[i]) * kV + cv];
      part = make_float4(part.x + z.x, part.y + z.y, part.z + z.z, part.w + z.w);
    }
    reinterpret_cast<float4*>(sQ)[grp * kV + cv] = part;
    __syncthreads();
    const auto* parts = reinterpret_cast<const float*>(sQ);
    for (int d = tid; d < HD; d += 128) {
      float sum = 0.0f;
#pragma unroll
      for (int g2 = 0; g2 < kG; ++g2) sum += parts[g2 * HD + d];
      zR[d] = p.zall[h * HD + d] - sum;
    }
  }
  __syncthreads();
  // phi(q) (softmax over channels, bf16) into sQ, and each row's denominator from those bf16 values.
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int r = warp * 16 + i;
    float x[kPer];
    if constexpr (kPer == 4) {
      const float2 a = unpackBf16(raw[i].x), c = unpackBf16(raw[i].y);
      x[0] = a.x, x[1] = a.y, x[2] = c.x, x[3] = c.y;
    } else {
      const float2 a = unpackBf16(raw[i]);
      x[0] = a.x, x[1] = a.y;
    }
    float mx = x[0];
#pragma unroll
    for (int j = 1; j < kPer; ++j) mx = fmaxf(mx, x[j]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      x[j] = __expf(x[j] - mx);
      sum += x[j];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const float scale = b * 64 + r < p.n ? 1.0f / sum : 0.0f;
    float dot = 0.0f;
    uint32_t packed[kPer / 2];
#pragma unroll
    for (int j = 0; j < kPer / 2; ++j) {
      packed[j] = packBf16(x[2 * j] * scale, x[2 * j + 1] * scale);
      const float2 y = unpackBf16(packed[j]);
      dot += y.x * zR[lane * kPer + 2 * j] + y.y * zR[lane * kPer + 2 * j + 1];
    }
    uint8_t* dst = sQ + r * kP + lane * kPer * 2;
    if constexpr (kPer == 4) *reinterpret_cast<uint2*>(dst) = make_uint2(packed[0], packed[1]);
    else *reinterpret_cast<uint32_t*>(dst) = packed[0];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    if (lane == 0) den[r] = dot;
  }
  cpWait<0>();
  __syncthreads();
  uint32_t qf[kKCH][4];
#pragma unroll
  for (int c = 0; c < kKCH; ++c)
    ldsm4(qf[c], sQ + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kP + c * 32 + (lane >> 4) * 16);
  float o[kNT][4];
#pragma unroll
  for (int n = 0; n < kNT; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  pvAccum<kNT, kKCH, kP>(o, qf, sH, lane);
  __syncthreads();  // every warp is done with H_R: proj_l takes its place
  loadTile<HD, HD * 2, kP, 128>(sH, reinterpret_cast<const uint8_t*>(p.projL), HD * 2, 0, HD, tid);
  cpCommit();
  // o's accumulator fragments are the A fragments of o . proj_l^T (16 columns per k-chunk).
  uint32_t oa[kKCH][4];
#pragma unroll
  for (int c = 0; c < kKCH; ++c) {
    oa[c][0] = packBf16(o[2 * c][0], o[2 * c][1]);
    oa[c][1] = packBf16(o[2 * c][2], o[2 * c][3]);
    oa[c][2] = packBf16(o[2 * c + 1][0], o[2 * c + 1][1]);
    oa[c][3] = packBf16(o[2 * c + 1][2], o[2 * c + 1][3]);
  }
  cpWait<0>();
  __syncthreads();
#pragma unroll
  for (int n = 0; n < kNT; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  // proj_l's rows are output channels: [n][k] row-major is the B operand's column-major layout.
#pragma unroll
  for (int c = 0; c < kKCH; ++c)
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
      uint32_t bq[4];
      ldsm4(bq, sH + (np * 16 + (lane & 7) + (lane >> 4) * 8) * kP + c * 32 + ((lane >> 3) & 1) * 16);
      mmaBf16(o[2 * np], oa[c], bq[0], bq[1]);
      mmaBf16(o[2 * np + 1], oa[c], bq[2], bq[3]);
    }
  const int rl0 = warp * 16 + g, rl1 = rl0 + 8, r0 = b * 64 + rl0, r1 = b * 64 + rl1;
  const float inv0 = 1.0f / (den[rl0] + kLinearEps), inv1 = 1.0f / (den[rl1] + kLinearEps);
  // Every load of the sparse output before any store: the two rows are oTok apart, which the
  // compiler cannot prove non-zero, so interleaved read-add-writes would each wait on the last.
  uint32_t* dst0 = reinterpret_cast<uint32_t*>(p.out + h * p.oHead + static_cast<int64_t>(r0) * p.oTok + 2 * c4);
  uint32_t* dst1 = reinterpret_cast<uint32_t*>(p.out + h * p.oHead + static_cast<int64_t>(r1) * p.oTok + 2 * c4);
  if (!p.accumulate) {
#pragma unroll
    for (int n = 0; n < kNT; ++n) {
      if (r0 < p.n) dst0[n * 4] = packBf16(o[n][0] * inv0, o[n][1] * inv0);
      if (r1 < p.n) dst1[n * 4] = packBf16(o[n][2] * inv1, o[n][3] * inv1);
    }
    return;
  }
  uint32_t prev[kNT][2];
#pragma unroll
  for (int n = 0; n < kNT; ++n) {
    prev[n][0] = r0 < p.n ? dst0[n * 4] : 0u;
    prev[n][1] = r1 < p.n ? dst1[n * 4] : 0u;
  }
#pragma unroll
  for (int n = 0; n < kNT; ++n) {
    const float2 a = unpackBf16(prev[n][0]), c = unpackBf16(prev[n][1]);
    if (r0 < p.n) dst0[n * 4] = packBf16(a.x + o[n][0] * inv0, a.y + o[n][1] * inv0);
    if (r1 < p.n) dst1[n * 4] = packBf16(c.x + o[n][2] * inv1, c.y + o[n][3] * inv1);
  }
}

// Heads whose SLA masked state sums (hR) are held at once: nbq * hd^2 * 2 bytes per head, at most
// 256 MB together unless FF_CUDA_SLA_CHUNK_HEADS names the count (bench/gpu's tuning switch; a
// different value there must size the workspace too). At [12, 32760, 128] (16 MB a head) that is
// every head in one product. (When the states were chunked too, chunks of 1 / 2 / 4 / 6 / 12 heads
// took 3.28 / 3.21 / 3.17 / 3.13 / 3.12 ms for the whole SLA call on the H200: fewer, larger
// products won over L2 reuse.)
int slaChunkHeads(const AttnShape& s) {
  const int64_t nbq = (s.qLen + 63) / 64, hd = s.headDim;
  int64_t heads = (int64_t{256} << 20) / (nbq * hd * hd * 2);
  if (const char* e = std::getenv("FF_CUDA_SLA_CHUNK_HEADS"); e != nullptr && e[0] != '\0') heads = std::atoi(e);
  return static_cast<int>(std::clamp<int64_t>(heads, 1, s.heads));
}

// Scratch layout inside the caller's workspace.
struct Workspace {
  float *ksum, *zall, *qScale, *kScale, *qPool, *kPool, *scores, *zBlock;
  int8_t *qi8, *ki8;
  int32_t* blocks;
  bf16* mask;    // [heads, nbq, maskLd]: 1 for the key blocks a query block did not select
  bf16* states;  // [heads, nbk, hd * hd]: phi(k~_j)^T v_j per key block
  bf16* hR;      // [chunkHeads, nbq, hd * hd]: the states summed over each query block's unselected blocks
  uint8_t* vt8;  // e4m3 v^T [heads, hd, vtRow] for the wgmma kernels' FP8 P.V
  int* vAmax;    // [heads, hd]
  int64_t vtRow;
  int maskLd, chunkHeads;
  size_t bytes;

  Workspace(const AttnShape& s, void* base) {
    const int64_t nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64, hd = s.headDim, H = s.heads;
    size_t off = 0;
    auto take = [&](size_t n) {
      const size_t at = off;
      off += (n + 255) / 256 * 256;
      return static_cast<uint8_t*>(base) + at;
    };
    maskLd = static_cast<int>((nbk + 7) / 8 * 8);  // 16-byte columns for cuBLAS
    chunkHeads = slaChunkHeads(s);
    ksum = reinterpret_cast<float*>(take(H * hd * 4));
    zall = reinterpret_cast<float*>(take(H * hd * 4));
    qScale = reinterpret_cast<float*>(take(H * nbq * 4));
    kScale = reinterpret_cast<float*>(take(H * nbk * 4));
    qPool = reinterpret_cast<float*>(take(H * nbq * hd * 4));
    kPool = reinterpret_cast<float*>(take(H * nbk * hd * 4));
    scores = reinterpret_cast<float*>(take(H * nbq * nbk * 4));
    zBlock = reinterpret_cast<float*>(take(H * nbk * hd * 4));
    qi8 = reinterpret_cast<int8_t*>(take(H * nbq * 64 * hd));
    ki8 = reinterpret_cast<int8_t*>(take(H * nbk * 64 * hd));
    blocks = reinterpret_cast<int32_t*>(take(H * nbq * nbk * 4));
    mask = reinterpret_cast<bf16*>(take(H * nbq * maskLd * 2));
    states = reinterpret_cast<bf16*>(take(H * nbk * hd * hd * 2));
    hR = reinterpret_cast<bf16*>(take(chunkHeads * nbq * hd * hd * 2));
    vtRow = (s.kvLen + 127) / 128 * 128;
    vt8 = take(H * hd * vtRow);
    vAmax = reinterpret_cast<int*>(take(H * hd * 4));
    bytes = off;
  }
};

void checkShape(const AttnShape& s, const AttnTensor* ts, int n) {
  if (s.headDim != 64 && s.headDim != 128) throw std::invalid_argument("CUDA attention: head_dim must be 64 or 128, got " + std::to_string(s.headDim));
  if (s.heads <= 0 || s.qLen <= 0 || s.kvLen <= 0) throw std::invalid_argument("CUDA attention: empty shape");
  for (int i = 0; i < n; ++i) {
    const AttnTensor& t = ts[i];
    if (!t.data || t.headStride % 8 != 0 || t.tokenStride % 8 != 0 || reinterpret_cast<uintptr_t>(t.data) % 16 != 0)
      throw std::invalid_argument("CUDA attention: tensors must be 16-byte aligned with strides that are multiples of 8");
  }
}

float softmaxScale(const AttnShape& s) { return s.scale != 0.0f ? s.scale : 1.0f / std::sqrt(static_cast<float>(s.headDim)); }

KernelParams baseParams(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                        const AttnTensor& out, int qkBytes) {
  KernelParams p{};
  p.q = static_cast<const uint8_t*>(q.data);
  p.k = static_cast<const uint8_t*>(k.data);
  p.v = static_cast<const uint8_t*>(v.data);
  p.out = static_cast<uint8_t*>(out.data);
  p.qHead = q.headStride * qkBytes;
  p.qTok = q.tokenStride * qkBytes;
  p.kHead = k.headStride * qkBytes;
  p.kTok = k.tokenStride * qkBytes;
  p.vHead = v.headStride * 2;
  p.vTok = v.tokenStride * 2;
  p.oHead = out.headStride * 2;
  p.oTok = out.tokenStride * 2;
  p.nQ = s.qLen;
  p.nK = s.kvLen;
  p.qBlocks = (s.qLen + 63) / 64;
  p.kBlocks = (s.kvLen + 63) / 64;
  return p;
}

template <int HD, int WARPS, int MT, Mode M>
void launchAttn(const KernelParams& p, int heads, cudaStream_t stream) {
  constexpr int smem = attnSmemBytes<HD, WARPS, MT, M>();
  static bool configured = false;
  if (!configured) {
    FF_CUDA(cudaFuncSetAttribute(attnKernel<HD, WARPS, MT, M>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  const int rowsPerCta = WARPS * 16 * MT;
  dim3 grid((p.nQ + rowsPerCta - 1) / rowsPerCta, heads);
  attnKernel<HD, WARPS, MT, M><<<grid, WARPS * 32, smem, stream>>>(p);
  FF_CUDA_LAUNCHED("attnKernel");
}

template <int WARPS, int MT, Mode M>
void launchAttnHd(int hd, const KernelParams& p, int heads, cudaStream_t stream) {
  if (hd == 64) launchAttn<64, WARPS, MT, M>(p, heads, stream);
  else launchAttn<128, WARPS, MT, M>(p, heads, stream);
}

template <int HD>
void launchLinearOut(const LinearOutParams& p, int heads, cudaStream_t stream) {
  const int smem = linearOutSmemBytes<HD>(p.nBlocks);
  static int configured = 0;  // the largest dynamic shared memory set so far
  if (smem > configured) {
    FF_CUDA(cudaFuncSetAttribute(linearOutKernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = smem;
  }
  const dim3 grid = p.headsFirst ? dim3(heads, p.nBlocks) : dim3(p.nBlocks, heads);
  linearOutKernel<HD><<<grid, 128, smem, stream>>>(p);
  FF_CUDA_LAUNCHED("linearOutKernel");
}

// FF_CUDA_ATTN_ORDER=heads: the quantization pass and SLA's linear-branch output kernel launch the
// heads of one token block next to each other (grid x = head) instead of the token blocks of one
// head (blocks, the default). Over token-major q/k/v (the DiT's [N, dim] rows) CTAs running
// together then read whole token rows rather than 256-byte pieces of many; on an H100 the DiT
// forward was no faster with it (docs/CUDA.md, e49d0db).
bool attnHeadsFirst() { return envChoice("FF_CUDA_ATTN_ORDER", {"blocks", "heads"}) == "heads"; }

// Smoothing mean, INT8 quantization (and, for SLA, pooled means; for its linear branch, given v,
// the block states phi(k~_j)^T v_j and phi's per-block sums, and with vt also the sparse kernel's
// block-major e4m3 V^T, after one pass over v for its per-channel max|v|) of q and k: one pass over
// k for its mean, then one launch for both tensors.
void prepareSage(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const Workspace& w, bool pools,
                 const AttnTensor* v, bool vt, cudaStream_t stream) {
  const int hd = s.headDim, H = s.heads;
  const int nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64;
  FF_CUDA(cudaMemsetAsync(w.ksum, 0, sizeof(float) * H * hd, stream));
  constexpr int kSumRows = 256;
  const dim3 sumGrid((s.kvLen + kSumRows - 1) / kSumRows, H);
  const auto* kd = static_cast<const bf16*>(k.data);
  if (v && vt) {  // the key sums and max|v| in one launch
    const auto* vd = static_cast<const bf16*>(v->data);
    FF_CUDA(cudaMemsetAsync(w.vAmax, 0, sizeof(int) * H * hd, stream));
    const dim3 grid(sumGrid.x, H, 2);
    if (hd == 64)
      keySumValueMaxKernel<64><<<grid, 256, 0, stream>>>(kd, k.headStride, k.tokenStride, vd, v->headStride, v->tokenStride,
                                                         s.kvLen, kSumRows, w.ksum, w.vAmax);
    else
      keySumValueMaxKernel<128><<<grid, 256, 0, stream>>>(kd, k.headStride, k.tokenStride, vd, v->headStride, v->tokenStride,
                                                          s.kvLen, kSumRows, w.ksum, w.vAmax);
    FF_CUDA_LAUNCHED("keySumValueMaxKernel");
  } else {
    if (hd == 64) channelReduceKernel<64, false><<<sumGrid, 256, 0, stream>>>(kd, k.headStride, k.tokenStride, s.kvLen, kSumRows, w.ksum);
    else channelReduceKernel<128, false><<<sumGrid, 256, 0, stream>>>(kd, k.headStride, k.tokenStride, s.kvLen, kSumRows, w.ksum);
    FF_CUDA_LAUNCHED("channelReduceKernel (key sums)");
  }
  const QuantParams qp{static_cast<const bf16*>(q.data), q.headStride, q.tokenStride, s.qLen, nbq, nullptr, w.qi8, w.qScale,
                       softmaxScale(s) * kLog2e, pools ? w.qPool : nullptr, nullptr, 0, 0, nullptr, nullptr, nullptr,
                       nullptr};
  const QuantParams kp{kd, k.headStride, k.tokenStride, s.kvLen, nbk, w.ksum, w.ki8, w.kScale, 1.0f,
                       pools ? w.kPool : nullptr, v ? static_cast<const bf16*>(v->data) : nullptr,
                       v ? v->headStride : 0, v ? v->tokenStride : 0, v ? w.states : nullptr, w.zBlock, w.vAmax,
                       v && vt ? w.vt8 : nullptr};
  const bool headsFirst = attnHeadsFirst();
  const dim3 grid = headsFirst ? dim3(H, std::max(nbq, nbk), 2) : dim3(std::max(nbq, nbk), H, 2);
  const size_t tileBytes = kp.states ? 2 * 64 * static_cast<size_t>(quantTilePitch(hd)) : 0;
  if (hd == 64) quantKernel<64><<<grid, 256, tileBytes, stream>>>(qp, kp, headsFirst);
  else quantKernel<128><<<grid, 256, tileBytes, stream>>>(qp, kp, headsFirst);
  FF_CUDA_LAUNCHED("quantKernel");
}

KernelParams sageParams(const AttnShape& s, const AttnTensor& v, const AttnTensor& out, const Workspace& w) {
  const int64_t hd = s.headDim, nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64;
  const AttnTensor qi{w.qi8, nbq * 64 * hd, hd}, ki{w.ki8, nbk * 64 * hd, hd};
  KernelParams p = baseParams(s, qi, ki, v, out, 1);
  p.qScale = w.qScale;
  p.kScale = w.kScale;
  return p;
}

// Tuning switches for bench/gpu (every tile shape they select is tested):
// FF_CUDA_ATTN_NARROW=1: dense attention on 8 warps of 16 rows instead of 4 warps of 2 x 16;
// FF_CUDA_SLA_WIDE=1: SLA query blocks on 2 warps of 2 x 16 rows instead of 4 warps of 16.
bool envFlag(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && e[0] == '1';
}
bool narrowTiles() { return envFlag("FF_CUDA_ATTN_NARROW"); }

// The current device's opt-in shared memory per block (bytes), read once.
int maxSharedMemoryPerBlock() {
  static const int bytes = [] {
    int dev = 0, v = 0;
    FF_CUDA(cudaGetDevice(&dev));
    FF_CUDA(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return v;
  }();
  return bytes;
}

// Sage attention and SLA's sparse branch on the wgmma kernels of attention_sm90.cu when
// they apply and FF_CUDA_ATTN_IMPL does not say mma (sageUsesWgmma); false = nothing launched, the
// mma.sync kernels are to run. accumulate: add to the bf16 in out instead of overwriting it;
// vtReady: the workspace already holds the e4m3 V^T (prepareSage wrote it).
bool launchWgmmaSage([[maybe_unused]] const AttnShape& s, [[maybe_unused]] const AttnTensor& v,
                     [[maybe_unused]] const AttnTensor& out, [[maybe_unused]] const Workspace& w,
                     [[maybe_unused]] const int32_t* blocks, [[maybe_unused]] int kc, [[maybe_unused]] bool accumulate,
                     [[maybe_unused]] bool vtReady, [[maybe_unused]] cudaStream_t stream) {
#ifdef FF_CUDA_HAVE_SM90A
  if (!sageUsesWgmma(s.headDim)) return false;
  const int64_t hd = s.headDim, nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64;
  // Quantized q and k~ are [heads, blocks * 64, hd] INT8 in the workspace.
  sm90::SageArgs a{w.qi8, w.ki8, v.data, out.data, nbq * 64 * hd, hd, nbk * 64 * hd, hd,
                         v.headStride, v.tokenStride, out.headStride, out.tokenStride, s.heads, s.qLen, s.kvLen,
                         s.headDim, w.qScale, w.kScale, static_cast<int>(nbq), static_cast<int>(nbk), blocks, kc,
                         w.vt8, w.vAmax, w.vtRow};
  a.accumulate = accumulate;
  a.vtReady = vtReady;
  sm90::sageAttention(a, stream);
  return true;
#else
  return false;
#endif
}

void requireWorkspace(const AttnShape& s, size_t have) {
  const size_t need = attentionWorkspaceBytes(s);
  if (have < need) throw std::invalid_argument("CUDA attention: workspace of " + std::to_string(have) + " bytes, need " + std::to_string(need));
}

// SLA's linear branch, added to the sparse output in `out` (docs/CUDA.md), from the block states
// prepareSage wrote: z_all once for all heads, then per chunk of heads the states' sums over each
// query block's unselected blocks (a dense product with the 0/1 mask) and the normalise, project
// and add kernel. `stage` records the profiling event after z_all.
template <typename Stage>
void slaLinearBranch(const AttnShape& s, const AttnTensor& q, const AttnTensor& out, const void* projL,
                     const int32_t* blocks, int kc, bool accumulate, const Workspace& w, cublasContext* cublas,
                     cudaStream_t stream, Stage&& stage) {
  const int hd = s.headDim, H = s.heads, nb = (s.qLen + 63) / 64;
  const int64_t hh = static_cast<int64_t>(hd) * hd;
  const float one = 1.0f, zero = 0.0f;
  if (hd == 64) zAllKernel<64><<<H, 1024, 0, stream>>>(w.zBlock, nb, w.zall);
  else zAllKernel<128><<<H, 1024, 0, stream>>>(w.zBlock, nb, w.zall);
  FF_CUDA_LAUNCHED("zAllKernel");
  stage();

  LinearOutParams lp{static_cast<const bf16*>(q.data), q.headStride, q.tokenStride, static_cast<bf16*>(out.data),
                     out.headStride, out.tokenStride, s.qLen, nb, kc, 0, w.hR, w.zall, w.zBlock, blocks,
                     static_cast<const bf16*>(projL), accumulate, attnHeadsFirst()};
  for (int h0 = 0; h0 < H; h0 += w.chunkHeads) {
    const int g = std::min(w.chunkHeads, H - h0);
    // hR[h, b] = sum_j mask[h, b, j] states[h, j]: [hd^2, nb] column-major = states^T . mask^T per head.
    FF_CUBLAS(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(hh), nb, nb, &one,
                                         w.states + h0 * nb * hh,
                                         CUDA_R_16BF, static_cast<int>(hh), nb * hh,
                                         w.mask + static_cast<int64_t>(h0) * nb * w.maskLd, CUDA_R_16BF, w.maskLd,
                                         static_cast<int64_t>(nb) * w.maskLd, &zero, w.hR, CUDA_R_16BF, static_cast<int>(hh),
                                         nb * hh, g, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    lp.head0 = h0;
    if (hd == 64) launchLinearOut<64>(lp, g, stream);
    else launchLinearOut<128>(lp, g, stream);
  }
}

}  // namespace

bool sageUsesWgmma([[maybe_unused]] int headDim) {
  const std::string impl = envChoice("FF_CUDA_ATTN_IMPL", {"mma", "wgmma"});
#ifdef FF_CUDA_HAVE_SM90A
  return impl != "mma" && sm90::available(headDim);  // unset: wgmma where it applies
#else
  return false;
#endif
}

int slaSelectedCount(float topK, int blocks) {
  const auto kc = static_cast<int>(std::floor(static_cast<double>(topK) * blocks + 0.5));
  return std::clamp(kc, 1, blocks);
}

size_t attentionWorkspaceBytes(const AttnShape& s) { return Workspace(s, nullptr).bytes; }

// Dense bf16 attention on Hopper: FF_CUDA_FLASH_IMPL=wgmmapp (the default where sm90::available)
// runs the warp-specialized kernel of attention_sm90_ws.cu with ping-pong consumers, wgmma the
// same with both consumers at once, mma the mma.sync kernel of this file. Ping-pong measured
// faster on an H100 at every shape the benches run (32760 tokens: 11.25 against 11.77 ms; the
// DiT's cross-attention over 512 text tokens: 9.00 against 9.53 ms per forward) and on the H200.
namespace {
enum class FlashImpl { Mma, Wgmma, WgmmaPingPong };
FlashImpl flashImpl([[maybe_unused]] int headDim) {
  const std::string impl = envChoice("FF_CUDA_FLASH_IMPL", {"mma", "wgmma", "wgmmapp"});
#ifdef FF_CUDA_HAVE_SM90A
  if (impl != "mma" && sm90::available(headDim)) return impl == "wgmma" ? FlashImpl::Wgmma : FlashImpl::WgmmaPingPong;
#endif
  return FlashImpl::Mma;
}
}  // namespace

void flashAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                    const AttnTensor& out, CUstream_st* stream) {
  const AttnTensor all[] = {q, k, v, out};
  checkShape(s, all, 4);
#ifdef FF_CUDA_HAVE_SM90A
  if (const FlashImpl impl = flashImpl(s.headDim); impl != FlashImpl::Mma) {
    const sm90::FlashArgs f{q.data, k.data, v.data, out.data, q.headStride, q.tokenStride, k.headStride, k.tokenStride,
                            v.headStride, v.tokenStride, out.headStride, out.tokenStride, s.heads, s.qLen, s.kvLen,
                            s.headDim, softmaxScale(s) * kLog2e};
    sm90::flashAttentionWs(f, impl == FlashImpl::WgmmaPingPong, stream);
    return;
  }
#else
  flashImpl(s.headDim);  // rejects a bad value on every build
#endif
  KernelParams p = baseParams(s, q, k, v, out, 2);
  p.scaleLog2 = softmaxScale(s) * kLog2e;
  // bf16 tiles at head_dim 128 take 104 KB of shared memory with 128 query rows; cards that give a
  // block less (sm_120: 99 KB) run 64 rows per CTA (87 KB).
  const bool small = s.headDim == 128 && maxSharedMemoryPerBlock() < attnSmemBytes<128, kFullWarps, kFullMT, Mode::Flash>();
  if (small) launchAttnHd<4, 1, Mode::Flash>(s.headDim, p, s.heads, stream);
  else if (narrowTiles()) launchAttnHd<8, 1, Mode::Flash>(s.headDim, p, s.heads, stream);
  else launchAttnHd<kFullWarps, kFullMT, Mode::Flash>(s.headDim, p, s.heads, stream);
}

void sageAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                   const AttnTensor& out, void* workspace, size_t workspaceBytes, CUstream_st* stream) {
  const AttnTensor all[] = {q, k, v, out};
  checkShape(s, all, 4);
  requireWorkspace(s, workspaceBytes);
  const Workspace w(s, workspace);
  prepareSage(s, q, k, w, false, nullptr, false, stream);
  if (launchWgmmaSage(s, v, out, w, nullptr, 0, false, false, stream)) return;
  if (narrowTiles()) launchAttnHd<8, 1, Mode::Sage>(s.headDim, sageParams(s, v, out, w), s.heads, stream);
  else launchAttnHd<kFullWarps, kFullMT, Mode::Sage>(s.headDim, sageParams(s, v, out, w), s.heads, stream);
}

void slaAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                  const AttnTensor& out, const SlaOptions& o, void* workspace, size_t workspaceBytes,
                  cublasContext* cublas, CUstream_st* stream) {
  const AttnTensor all[] = {q, k, v, out};
  checkShape(s, all, 4);
  requireWorkspace(s, workspaceBytes);
  if (s.qLen != s.kvLen) throw std::invalid_argument("CUDA SLA attention is self-attention only (qLen == kvLen)");
  if (!(o.topK > 0.0f && o.topK <= 1.0f)) throw std::invalid_argument("slaTopK must be in (0, 1], got " + std::to_string(o.topK));
  const Workspace w(s, workspace);
  const int hd = s.headDim, H = s.heads, nb = (s.qLen + 63) / 64, kc = slaSelectedCount(o.topK, nb);
  const bool linear = kc < nb && o.projL != nullptr;
  const bool wgmma = sageUsesWgmma(hd);
  // With the linear branch the quantization kernel holds every block of v: where the sparse branch
  // reads block-major e4m3 V^T, that kernel writes it too, sparing the sparse branch a pass over v.
  bool vtInQuant = false;
#ifdef FF_CUDA_HAVE_SM90A
  vtInQuant = linear && wgmma && sm90::sparseVtBlockMajor(s.kvLen);
#endif
  prepareSage(s, q, k, w, true, linear ? &v : nullptr, vtInQuant, stream);

  int ran = 0;
  auto stage = [&](int i) {
    if (o.stageEvents) FF_CUDA(cudaEventRecord(o.stageEvents[i], stream));
    if (o.stageOrder) o.stageOrder[ran++] = i;
  };
  stage(0);

  // Pooled scores s[h] = qPool[h] . kPool[h]^T ([nb, nb] row-major = column-major kPool . qPool^T),
  // fp32 through cuBLAS; then the top-kc of each row (and the linear branch's complement mask).
  const float one = 1.0f, zero = 0.0f;
  FF_CUBLAS(cublasSetStream(cublas, stream));
  FF_CUBLAS(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, nb, nb, hd, &one, w.kPool, CUDA_R_32F, hd,
                                       static_cast<int64_t>(nb) * hd, w.qPool, CUDA_R_32F, hd, static_cast<int64_t>(nb) * hd,
                                       &zero, w.scores, CUDA_R_32F, nb, static_cast<int64_t>(nb) * nb, H, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
  int32_t* blocks = o.selectedOut ? o.selectedOut : w.blocks;
  const int selCtas = (H * nb + kSelectWarps - 1) / kSelectWarps;
  bf16* selMask = linear ? w.mask : nullptr;
  // Up to 512 key blocks (32768 tokens) the keys stay in registers (the two forms that have run
  // on a GPU: 4 and 16 per lane); beyond, in shared memory.
  if (nb <= 128) slaSelectRegKernel<4><<<selCtas, kSelectWarps * 32, 0, stream>>>(w.scores, H * nb, nb, kc, blocks, selMask, w.maskLd);
  else if (nb <= 512) slaSelectRegKernel<16><<<selCtas, kSelectWarps * 32, 0, stream>>>(w.scores, H * nb, nb, kc, blocks, selMask, w.maskLd);
  else {
    const size_t selSmem = sizeof(uint32_t) * kSelectWarps * nb;
    if (selSmem > 48 * 1024) FF_CUDA(cudaFuncSetAttribute(slaSelectKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(selSmem)));
    slaSelectKernel<<<selCtas, kSelectWarps * 32, selSmem, stream>>>(w.scores, H * nb, nb, kc, blocks, selMask, w.maskLd);
  }
  FF_CUDA_LAUNCHED("slaSelectKernel");
  stage(1);

  // The wgmma sparse kernel adds its rows to the linear branch's output in its epilogue, so that
  // branch runs first and writes; the mma.sync kernels write, and the branch adds to them after.
  auto linearBranch = [&](bool accumulate) {
    slaLinearBranch(s, q, out, o.projL, blocks, kc, accumulate, w, cublas, stream, [&] { stage(3); });
    stage(4);
  };
  if (linear && wgmma) linearBranch(false);
  if (!launchWgmmaSage(s, v, out, w, blocks, kc, linear && wgmma, vtInQuant, stream)) {
    KernelParams sp = sageParams(s, v, out, w);
    sp.blocks = blocks;
    sp.kc = kc;
    if (envFlag("FF_CUDA_SLA_WIDE")) launchAttnHd<2, 2, Mode::Sage>(hd, sp, H, stream);
    else launchAttnHd<4, 1, Mode::Sage>(hd, sp, H, stream);
  }
  stage(2);
  if (linear && !wgmma) linearBranch(true);
}

}  // namespace ff::cuda
