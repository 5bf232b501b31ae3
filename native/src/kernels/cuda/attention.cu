// CUDA attention: flash (bf16), sage (INT8 Q.K^T) and SLA (block-sparse sage + linear branch).
// One tiled kernel serves all three: a CTA owns 16 query rows per warp, streams 64-key tiles of K
// and V through shared memory with cp.async (two stages), computes S = Q.K^T with mma.sync
// (bf16 m16n8k16 or s8 m16n8k32), runs the online softmax in registers (base 2) and accumulates
// P.V with bf16 mma.sync. The Linear mode is the SLA linear branch over the selected blocks:
// S = phi(q).phi(k~)^T with no softmax, P.V over V proj_l^T, finished by phi(q).H_all.
// Fragment layouts follow the PTX ISA's mma.sync tables; ldmatrix feeds every operand (8-bit
// operands are loaded as b16 pairs, which gives the s8 A/B fragment layout byte for byte).
// On Hopper, FF_CUDA_ATTN_IMPL=wgmma hands Sage and SLA's sparse branch to attention_sm90.cu.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_device.cuh"
#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/check.h"

namespace ff::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLinearEps = 1e-5f;

enum class Mode { Flash, Sage, Linear };

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
  const uint8_t* hall;   // Linear: bf16 [heads, hd, hd] = sum phi(k~)^T (v proj_l^T)
  const float* zall;     // Linear: [heads, hd] = sum phi(k~)
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
  static_assert(2 * 64 >= HD, "H_all must fit the two V stages");
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

    if constexpr (M != Mode::Linear) {
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
    } else {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          lrow[mt][0] += s[mt][j][0] + s[mt][j][1];
          lrow[mt][1] += s[mt][j][2] + s[mt][j][3];
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
  if constexpr (M == Mode::Linear) {
    // H_all rows in the (now free) V stages for the phi(q).H_all term.
    loadTile<HD, kVB, kVP, kThreads>(sV, p.hall + static_cast<int64_t>(h) * HD * HD * 2, kVB, 0, HD, tid);
    cpCommit();
    cpWait<0>();
    __syncthreads();
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float l0 = lrow[mt][0], l1 = lrow[mt][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const int r0 = q0 + wrow + mt * 16 + g, r1 = r0 + 8;
    if constexpr (M != Mode::Linear) {
      const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const int col = n * 8 + 2 * c4;
        if (r0 < p.nQ)
          *reinterpret_cast<uint32_t*>(go + r0 * p.oTok + col * 2) = packBf16(o[mt][n][0] * inv0, o[mt][n][1] * inv0);
        if (r1 < p.nQ)
          *reinterpret_cast<uint32_t*>(go + r1 * p.oTok + col * 2) = packBf16(o[mt][n][2] * inv1, o[mt][n][3] * inv1);
      }
    } else {
      // o holds phi(q).sum_sel phi(k~)^T (v proj^T); the linear branch is phi(q).H_all minus it.
      float (&om)[kNT][4] = o[mt];
#pragma unroll
      for (int n = 0; n < kNT; ++n) om[n][0] = -om[n][0], om[n][1] = -om[n][1], om[n][2] = -om[n][2], om[n][3] = -om[n][3];
      uint32_t qf[kKCH][4];
#pragma unroll
      for (int c = 0; c < kKCH; ++c) qFrag(qf[c], mt, c);
      pvAccum<kNT, kKCH, kVP>(om, qf, sV, lane);
      // phi(q) . z_all from the A fragments: a0/a2 hold row g, a1/a3 row g+8.
      const float* z = p.zall + h * HD;
      float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
      for (int c = 0; c < kKCH; ++c) {
        const int col = c * 16 + 2 * c4;
        const float2 za = *reinterpret_cast<const float2*>(z + col), zb = *reinterpret_cast<const float2*>(z + col + 8);
        const float2 x0 = unpackBf16(qf[c][0]), x1 = unpackBf16(qf[c][1]), x2 = unpackBf16(qf[c][2]),
                     x3 = unpackBf16(qf[c][3]);
        d0 += x0.x * za.x + x0.y * za.y + x2.x * zb.x + x2.y * zb.y;
        d1 += x1.x * za.x + x1.y * za.y + x3.x * zb.x + x3.y * zb.y;
      }
      d0 += __shfl_xor_sync(0xffffffffu, d0, 1);
      d0 += __shfl_xor_sync(0xffffffffu, d0, 2);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 1);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 2);
      const float inv0 = 1.0f / (d0 - l0 + kLinearEps), inv1 = 1.0f / (d1 - l1 + kLinearEps);
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const int col = n * 8 + 2 * c4;
        if (r0 < p.nQ) {
          auto* dst = reinterpret_cast<uint32_t*>(go + r0 * p.oTok + col * 2);
          const float2 prev = unpackBf16(*dst);
          *dst = packBf16(prev.x + om[n][0] * inv0, prev.y + om[n][1] * inv0);
        }
        if (r1 < p.nQ) {
          auto* dst = reinterpret_cast<uint32_t*>(go + r1 * p.oTok + col * 2);
          const float2 prev = unpackBf16(*dst);
          *dst = packBf16(prev.x + om[n][2] * inv1, prev.y + om[n][3] * inv1);
        }
      }
    }
  }
}

// Per-head channel sums of k over tokens (atomics into a zeroed [heads, HD]).
template <int HD>
__global__ void keySumKernel(const bf16* k, int64_t kHead, int64_t kTok, int n, float* ksum) {
  const int h = blockIdx.x, d = threadIdx.x;
  float acc = 0.0f;
  for (int t = blockIdx.y; t < n; t += gridDim.y) acc += __bfloat162float(k[h * kHead + static_cast<int64_t>(t) * kTok + d]);
  atomicAdd(ksum + h * HD + d, acc);
}

struct QuantParams {
  const bf16* x;
  int64_t head, tok;  // elements
  int n, nBlocks;
  const float* ksum;  // k: subtract ksum / n (the smoothing mean); q: null
  int8_t* xq;         // [heads, nBlocks * 64, HD]
  float* scale;       // [heads, nBlocks], times scaleMul
  float scaleMul;
  float* pool;        // [heads, nBlocks, HD] block means (of k~ for k), or null
  bf16* phi;          // [heads, nBlocks * 64, HD] softmax over channels, zero past n, or null
  float* zsum;        // [heads, HD] += sum of phi over tokens (atomics), or null
};

// One CTA per (64-token block, head): smoothing, per-block INT8 quantization, block mean and phi.
template <int HD>
__global__ void __launch_bounds__(256) quantKernel(QuantParams p) {
  __shared__ float tile[64][HD + 1];
  __shared__ float red[8];
  const int b = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int rows = min(64, p.n - b * 64);
  float amax = 0.0f;
  for (int i = tid; i < 64 * HD; i += 256) {
    const int r = i / HD, d = i % HD;
    float v = 0.0f;
    if (r < rows) {
      v = __bfloat162float(p.x[h * p.head + static_cast<int64_t>(b * 64 + r) * p.tok + d]);
      if (p.ksum) v -= p.ksum[h * HD + d] / static_cast<float>(p.n);
    }
    tile[r][d] = v;
    amax = fmaxf(amax, fabsf(v));
  }
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if (lane == 0) red[warp] = amax;
  __syncthreads();
  amax = red[0];
  for (int w = 1; w < 8; ++w) amax = fmaxf(amax, red[w]);
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  if (tid == 0) p.scale[h * p.nBlocks + b] = amax / 127.0f * p.scaleMul;
  int8_t* xq = p.xq + (static_cast<int64_t>(h) * p.nBlocks * 64 + b * 64) * HD;
  for (int i = tid; i < 64 * HD; i += 256) xq[i] = static_cast<int8_t>(__float2int_rn(tile[i / HD][i % HD] * inv));
  if (p.pool) {
    for (int d = tid; d < HD; d += 256) {
      float s = 0.0f;
      for (int r = 0; r < rows; ++r) s += tile[r][d];
      p.pool[(static_cast<int64_t>(h) * p.nBlocks + b) * HD + d] = s / static_cast<float>(rows);
    }
  }
  if (!p.phi) return;
  __syncthreads();
  constexpr int kPer = HD / 32;
  bf16* phi = p.phi + (static_cast<int64_t>(h) * p.nBlocks * 64 + b * 64) * HD;
  for (int r = warp; r < 64; r += 8) {
    float x[kPer];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      x[j] = tile[r][lane + 32 * j];
      mx = fmaxf(mx, x[j]);
    }
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      x[j] = __expf(x[j] - mx);
      sum += x[j];
    }
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const float scale = r < rows ? 1.0f / sum : 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const bf16 y = __float2bfloat16_rn(x[j] * scale);
      phi[r * HD + lane + 32 * j] = y;
      tile[r][lane + 32 * j] = __bfloat162float(y);
    }
  }
  if (!p.zsum) return;
  __syncthreads();
  for (int d = tid; d < HD; d += 256) {
    float s = 0.0f;
    for (int r = 0; r < rows; ++r) s += tile[r][d];
    atomicAdd(p.zsum + h * HD + d, s);
  }
}

// One CTA per (query block, head): sort the pooled scores of every key block (score[h, b, :], one
// cuBLAS product of the pooled means) best first with a bitonic network in shared memory (ties to
// the lower index), then write the kc best ascending. pow2 = the next power of two >= nbk.
__global__ void __launch_bounds__(256) slaSelectKernel(const float* scores, int nbq, int nbk, int pow2, int kc,
                                                        int32_t* out) {
  extern __shared__ float sh[];
  float* key = sh;
  int* idx = reinterpret_cast<int*>(key + pow2);
  int* flag = idx + pow2;
  const int b = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const float* row = scores + (static_cast<int64_t>(h) * nbq + b) * nbk;
  for (int j = tid; j < pow2; j += 256) {
    key[j] = j < nbk ? row[j] : -INFINITY;
    idx[j] = j < nbk ? j : INT_MAX;
    if (j < nbk) flag[j] = 0;
  }
  __syncthreads();
  // "x before y": higher score, or equal score and lower index.
  auto before = [&](int x, int y) { return key[x] > key[y] || (key[x] == key[y] && idx[x] < idx[y]); };
  for (int k = 2; k <= pow2; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = tid; t < pow2; t += 256) {
        const int u = t ^ j;
        if (u > t && ((t & k) == 0 ? before(u, t) : before(t, u))) {
          const float kt = key[t];
          key[t] = key[u];
          key[u] = kt;
          const int it = idx[t];
          idx[t] = idx[u];
          idx[u] = it;
        }
      }
      __syncthreads();
    }
  }
  for (int r = tid; r < kc; r += 256) flag[idx[r]] = 1;
  __syncthreads();
  if (warp != 0) return;
  int32_t* sel = out + (static_cast<int64_t>(h) * nbq + b) * kc;
  int count = 0;
  for (int base = 0; base < nbk; base += 32) {
    const int j = base + lane;
    const bool f = j < nbk && flag[j];
    const unsigned m = __ballot_sync(0xffffffffu, f);
    if (f) sel[count + __popc(m & ((1u << lane) - 1u))] = j;
    count += __popc(m);
  }
}

// Scratch layout inside the caller's workspace.
struct Workspace {
  float *ksum, *zall, *qScale, *kScale, *qPool, *kPool, *scores;
  int8_t *qi8, *ki8;
  int32_t* blocks;
  bf16 *phiQ, *phiK, *vp, *hall;
  uint8_t* vt8;  // e4m3 v^T [heads, hd, vtRow] for the wgmma kernels' FP8 P.V
  int* vAmax;    // [heads, hd]
  int64_t vtRow;
  size_t bytes;

  Workspace(const AttnShape& s, void* base) {
    const int64_t nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64, hd = s.headDim, H = s.heads;
    size_t off = 0;
    auto take = [&](size_t n) {
      const size_t at = off;
      off += (n + 255) / 256 * 256;
      return static_cast<uint8_t*>(base) + at;
    };
    ksum = reinterpret_cast<float*>(take(H * hd * 4));
    zall = reinterpret_cast<float*>(take(H * hd * 4));
    qScale = reinterpret_cast<float*>(take(H * nbq * 4));
    kScale = reinterpret_cast<float*>(take(H * nbk * 4));
    qPool = reinterpret_cast<float*>(take(H * nbq * hd * 4));
    kPool = reinterpret_cast<float*>(take(H * nbk * hd * 4));
    scores = reinterpret_cast<float*>(take(H * nbq * nbk * 4));
    qi8 = reinterpret_cast<int8_t*>(take(H * nbq * 64 * hd));
    ki8 = reinterpret_cast<int8_t*>(take(H * nbk * 64 * hd));
    blocks = reinterpret_cast<int32_t*>(take(H * nbq * nbk * 4));
    phiQ = reinterpret_cast<bf16*>(take(H * nbq * 64 * hd * 2));
    phiK = reinterpret_cast<bf16*>(take(H * nbk * 64 * hd * 2));
    vp = reinterpret_cast<bf16*>(take(H * nbk * 64 * hd * 2));
    hall = reinterpret_cast<bf16*>(take(H * hd * hd * 2));
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

// Smoothing mean, INT8 quantization (and, for SLA, pooled means, phi and z_all) of q and k.
void prepareSage(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const Workspace& w, bool pools,
                 bool phi, cudaStream_t stream) {
  const int hd = s.headDim, H = s.heads;
  const int nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64;
  FF_CUDA(cudaMemsetAsync(w.ksum, 0, sizeof(float) * H * hd, stream));
  FF_CUDA(cudaMemsetAsync(w.zall, 0, sizeof(float) * H * hd, stream));
  const dim3 sumGrid(H, std::min(64, s.kvLen));
  if (hd == 64) keySumKernel<64><<<sumGrid, 64, 0, stream>>>(static_cast<const bf16*>(k.data), k.headStride, k.tokenStride, s.kvLen, w.ksum);
  else keySumKernel<128><<<sumGrid, 128, 0, stream>>>(static_cast<const bf16*>(k.data), k.headStride, k.tokenStride, s.kvLen, w.ksum);
  FF_CUDA_LAUNCHED("keySumKernel");
  QuantParams qp{static_cast<const bf16*>(q.data), q.headStride, q.tokenStride, s.qLen, nbq, nullptr, w.qi8, w.qScale,
                 softmaxScale(s) * kLog2e, pools ? w.qPool : nullptr, phi ? w.phiQ : nullptr, nullptr};
  QuantParams kp{static_cast<const bf16*>(k.data), k.headStride, k.tokenStride, s.kvLen, nbk, w.ksum, w.ki8, w.kScale,
                 1.0f, pools ? w.kPool : nullptr, phi ? w.phiK : nullptr, phi ? w.zall : nullptr};
  for (const QuantParams& x : {qp, kp}) {
    const dim3 grid(x.nBlocks, H);
    if (hd == 64) quantKernel<64><<<grid, 256, 0, stream>>>(x);
    else quantKernel<128><<<grid, 256, 0, stream>>>(x);
    FF_CUDA_LAUNCHED("quantKernel");
  }
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
// FF_CUDA_ATTN_IMPL=wgmma selects them and they apply (sageUsesWgmma); false = nothing launched, the
// mma.sync kernels are to run.
bool launchWgmmaSage([[maybe_unused]] const AttnShape& s, [[maybe_unused]] const AttnTensor& v,
                     [[maybe_unused]] const AttnTensor& out, [[maybe_unused]] const Workspace& w,
                     [[maybe_unused]] const int32_t* blocks, [[maybe_unused]] int kc, [[maybe_unused]] cudaStream_t stream) {
#ifdef FF_CUDA_HAVE_SM90A
  if (!sageUsesWgmma(s.headDim)) return false;
  const int64_t hd = s.headDim, nbq = (s.qLen + 63) / 64, nbk = (s.kvLen + 63) / 64;
  // Quantized q and k~ are [heads, blocks * 64, hd] INT8 in the workspace.
  const sm90::SageArgs a{w.qi8, w.ki8, v.data, out.data, nbq * 64 * hd, hd, nbk * 64 * hd, hd,
                         v.headStride, v.tokenStride, out.headStride, out.tokenStride, s.heads, s.qLen, s.kvLen,
                         s.headDim, w.qScale, w.kScale, static_cast<int>(nbq), static_cast<int>(nbk), blocks, kc,
                         w.vt8, w.vAmax, w.vtRow};
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

}  // namespace

bool sageUsesWgmma([[maybe_unused]] int headDim) {
  const char* e = std::getenv("FF_CUDA_ATTN_IMPL");
  const std::string impl = e ? e : "";
  if (!impl.empty() && impl != "mma" && impl != "wgmma")
    throw std::invalid_argument("FF_CUDA_ATTN_IMPL must be mma or wgmma, got '" + impl + "'");
#ifdef FF_CUDA_HAVE_SM90A
  return impl == "wgmma" && sm90::available(headDim);
#else
  return false;
#endif
}

int slaSelectedCount(float topK, int blocks) {
  const auto kc = static_cast<int>(std::floor(static_cast<double>(topK) * blocks + 0.5));
  return std::clamp(kc, 1, blocks);
}

size_t attentionWorkspaceBytes(const AttnShape& s) { return Workspace(s, nullptr).bytes; }

void flashAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                    const AttnTensor& out, CUstream_st* stream) {
  const AttnTensor all[] = {q, k, v, out};
  checkShape(s, all, 4);
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
  prepareSage(s, q, k, w, false, false, stream);
  if (launchWgmmaSage(s, v, out, w, nullptr, 0, stream)) return;
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
  prepareSage(s, q, k, w, true, linear, stream);

  auto stage = [&](int i) {
    if (o.stageEvents) FF_CUDA(cudaEventRecord(o.stageEvents[i], stream));
  };
  stage(0);

  // Pooled scores s[h] = qPool[h] . kPool[h]^T ([nb, nb] row-major = column-major kPool . qPool^T),
  // fp32 through cuBLAS; then the top-kc of each row.
  const float one = 1.0f, zero = 0.0f;
  FF_CUBLAS(cublasSetStream(cublas, stream));
  FF_CUBLAS(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, nb, nb, hd, &one, w.kPool, CUDA_R_32F, hd,
                                       static_cast<int64_t>(nb) * hd, w.qPool, CUDA_R_32F, hd, static_cast<int64_t>(nb) * hd,
                                       &zero, w.scores, CUDA_R_32F, nb, static_cast<int64_t>(nb) * nb, H, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
  int32_t* blocks = o.selectedOut ? o.selectedOut : w.blocks;
  int pow2 = 1;
  while (pow2 < nb) pow2 <<= 1;
  const size_t selSmem = (sizeof(float) + sizeof(int)) * pow2 + sizeof(int) * nb;
  if (selSmem > 48 * 1024) FF_CUDA(cudaFuncSetAttribute(slaSelectKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(selSmem)));
  slaSelectKernel<<<dim3(nb, H), 256, selSmem, stream>>>(w.scores, nb, nb, pow2, kc, blocks);
  FF_CUDA_LAUNCHED("slaSelectKernel");
  stage(1);

  KernelParams sp = sageParams(s, v, out, w);
  sp.blocks = blocks;
  sp.kc = kc;
  const bool wide = envFlag("FF_CUDA_SLA_WIDE");
  if (!launchWgmmaSage(s, v, out, w, blocks, kc, stream)) {
    if (wide) launchAttnHd<2, 2, Mode::Sage>(hd, sp, H, stream);
    else launchAttnHd<4, 1, Mode::Sage>(hd, sp, H, stream);
  }
  stage(2);
  if (!linear) return;

  // vp = v proj_l^T per head ([hd, N] column-major = [N, hd] row-major), then
  // H_all = phi(k~)^T vp per head: both through cuBLAS in bf16 with fp32 accumulation.
  const int64_t nPad = static_cast<int64_t>(nb) * 64;
  for (int h = 0; h < H; ++h) {
    const auto* vh = static_cast<const uint8_t*>(v.data) + h * v.headStride * 2;
    FF_CUBLAS(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, hd, s.kvLen, hd, &one, o.projL, CUDA_R_16BF, hd, vh, CUDA_R_16BF,
                           static_cast<int>(v.tokenStride), &zero, w.vp + h * nPad * hd, CUDA_R_16BF, hd, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
  }
  FF_CUBLAS(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_N, CUBLAS_OP_T, hd, hd, s.kvLen, &one, w.vp, CUDA_R_16BF, hd,
                                       nPad * hd, w.phiK, CUDA_R_16BF, hd, nPad * hd, &zero, w.hall, CUDA_R_16BF, hd,
                                       static_cast<int64_t>(hd) * hd, H, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  stage(3);
  const AttnTensor pq{w.phiQ, nPad * hd, hd}, pk{w.phiK, nPad * hd, hd}, pv{w.vp, nPad * hd, hd};
  KernelParams lp = baseParams(s, pq, pk, pv, out, 2);
  lp.blocks = blocks;
  lp.kc = kc;
  lp.hall = reinterpret_cast<const uint8_t*>(w.hall);
  lp.zall = w.zall;
  if (wide) launchAttnHd<2, 2, Mode::Linear>(hd, lp, H, stream);
  else launchAttnHd<4, 1, Mode::Linear>(hd, lp, H, stream);
}

}  // namespace ff::cuda
