// Dense Sage attention on Hopper (sm_90a), warp-specialized after FlashAttention-3's design. The
// math is attention_sm90.cu's (S = Q.K~^T on INT8 wgmma, online softmax in base 2, P.V on bf16 or
// e4m3 wgmma with P from registers); what differs is how tiles move and who waits for whom.
//
// CTA: 3 warpgroups, 128 query rows. Warpgroups 0 and 1 are consumers of 64 rows each
// (setmaxnreg.inc 240); warpgroup 2 is the producer: it gives its registers away (setmaxnreg.dec
// 24) and one thread issues every load as a bulk tensor copy (TMA, swizzled by the copy engine into
// the layouts wgmma reads, rows past the tensor zero-filled) into a ring of kStages stages, each
// guarded by two mbarriers: `full` (the producer's arrive.expect_tx, completed by the copies' byte
// count) and `empty` (one arrive per consumer warp once its wgmmas have read the stage). No
// CTA-wide barrier runs after the setup. (A single producer warp without setmaxnreg leaves 168
// registers to every thread: 3 warps share one SM sub-partition's register file, and the bf16
// consumers spill. Three consumer warpgroups get 160 registers each: O, S and P alone need ~150,
// and ptxas spilled over 1 KB per thread.)
//
// Consumer step i (FA3's intra-warpgroup overlap): wait full[i + 1] -> issue Q.K~_{i+1} (group 1)
// and P_i.V_i (group 2) -> wait_group 1 -> softmax of S_{i+1} while P_i.V_i runs -> wait_group 0
// -> arrive empty[i] -> O rescaled to the new maximum. With PINGPONG the two consumers take turns
// issuing their GEMMs through named barriers 1 and 2 (one's softmax overlaps the other's GEMMs).
//
// Softmax with folded scales and no int -> float conversion instruction (CUDA's throughput table
// gives that conversion a quarter of the FMA rate, as for ex2): the int32 score v (|v| < 2^22: at
// most 128 products of two INT8) plus the bits of 1.5 * 2^23 is the float 1.5 * 2^23 + v exactly,
// one integer add. Row maxima come from those floats per 64-key half (each half has its own k
// scale), then p = ex2(x * scale + bias) is one FFMA and one MUFU per score, bias = -max -
// 1.5 * 2^23 * scale (+ log2(448) for e4m3 P, so P lands in e4m3's range with no extra multiply;
// the row sums carry the same factor, so O / l cancels it). bf16 P is packed on the integer pipe.
// (Measured on an H200, neither this nor moving a quarter of the exponentials to the FMA pipe
// changed the time: the conversion unit is not what bounds this kernel.)
//
// The same kernel runs dense bf16 attention (BF: flashAttentionWs, Q.K^T on bf16 wgmma with Q and K
// as 64-channel halves like V) and SLA's sparse branch (SPARSE, below).
//
// Tensor maps (3-D, innermost first): q~ and k~ INT8 {hd, blocks * 64, heads}; v (and BF's q, k)
// bf16 {hd, n, heads} with the caller's strides, read as 64-channel halves; e4m3 v^T
// {vtRow, hd, heads}, or block-major {64, kBlocks * hd, heads} for SPARSE. Shared layouts are attention_sm90.cuh's (TMA's 128B/64B swizzle is the same
// XOR of address bits that swizzled<> computes, given 1024-byte aligned tiles).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/attention_sm90.cuh"

namespace ff::cuda::sm90 {

namespace {

constexpr int kKeysWs = 128;  // keys per tile

// Two consumer warpgroups of 64 query rows each, one producer warpgroup after them. BF: q and k
// bf16 (flash), stored as HD / 64 channel halves of 128-byte rows; else INT8 rows of HD bytes.
// SPARSE: 256 query rows, each consumer taking two 64-row blocks one after the other (kPasses).
template <int HD, bool PV8, bool BF, bool SPARSE = false>
struct WsTiles {
  static constexpr int kPasses = SPARSE ? 2 : 1;
  static constexpr int kRows = 128 * kPasses;  // query rows per CTA
  static constexpr int kThreads = 384;
  static constexpr int kQBytes = kRows * HD * (BF ? 2 : 1);
  static constexpr int kKBytes = kKeysWs * HD * (BF ? 2 : 1);
  static constexpr int kVBytes = kKeysWs * HD * (PV8 ? 1 : 2);
  static constexpr int kStageBytes = kKBytes + kVBytes;
  // INT8 q.k at hd 128: 4 stages (bf16 v) or 6 (e4m3); bf16 q.k: 3 (hd 128) or 6 (hd 64).
  static constexpr int kStages = (226 * 1024 - kQBytes) / kStageBytes;
  static constexpr int kBarOffset = kQBytes + kStages * kStageBytes;
  static constexpr int kSmem = kBarOffset + (2 * kStages + 1) * 8 + 1024;  // + slack to align the base to 1024
  static_assert(kStages >= 2, "at least two stages");
  static_assert(kSmem <= 227 * 1024, "within an sm_90 block's shared memory");
  static_assert(kQBytes % 1024 == 0 && kKBytes % 1024 == 0 && kVBytes % 1024 == 0, "tiles 1024-byte aligned");
};

__device__ __forceinline__ void mbarInit(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarExpectTx(uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// One box of a 3-D tensor map into shared memory at dst, completing on bar's transaction count.
__device__ __forceinline__ void tmaLoad3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ void namedBarSync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void namedBarArrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Tile helpers of the two softmaxes below. A tile's two 64-key halves (two consecutive key blocks,
// or two selected blocks of SLA) have v0 / v1 keys inside the sequence; the rest are masked. Thread
// values x[4j + e] are tile column 8j + 2c4 + (e & 1) (rows g and g + 8 alternate with e / 2).
__device__ __forceinline__ void maskKeys(float (&x)[kKeysWs / 2], int v0, int v1, int c4, float value) {
#pragma unroll
  for (int j = 0; j < kKeysWs / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (8 * (j % 8) + 2 * c4 + (e & 1) >= (j < 8 ? v0 : v1)) x[4 * j + e] = value;
}
// The rows' new maxima (this thread's candidates mx0, mx1, reduced over the quad) -> the factors
// that rescale O and the sums.
__device__ __forceinline__ float2 newMaxima(RowState& st, float mx0, float mx1) {
  quadMax(mx0, mx1);
  const float2 alpha = make_float2(ex2(st.m0 - mx0), ex2(st.m1 - mx1));
  st.m0 = mx0;
  st.m1 = mx1;
  return alpha;
}
// P = x (exponentials, 0 where masked) into the running sums and the P fragments.
template <bool PV8>
__device__ __forceinline__ float2 finishTile(float (&x)[kKeysWs / 2], PFrag<kKeysWs, PV8>& pf, RowState& st, float2 alpha) {
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int j = 0; j < kKeysWs / 8; ++j) {
    sum0 += x[4 * j] + x[4 * j + 1];
    sum1 += x[4 * j + 2] + x[4 * j + 3];
  }
  st.l0 = st.l0 * alpha.x + sum0;
  st.l1 = st.l1 * alpha.y + sum1;
  packP<kKeysWs, PV8, true>(x, pf, 1.0f);
  return alpha;
}

// The int32 scores of one tile -> P fragments; updates the running maxima and sums, returns the
// factors (rows g, g + 8) that rescale O. sc0 / sc1: q scale * k scale of the two halves; pBias:
// log2 of P's scale.
template <bool PV8>
__device__ __forceinline__ float2 softmaxFolded(const int (&acc)[kKeysWs / 2], PFrag<kKeysWs, PV8>& pf, RowState& st,
                                                float sc0, float sc1, int v0, int v1, int c4, float pBias) {
  constexpr int kChunks = kKeysWs / 8;
  constexpr int kMagicBits = 0x4B400000;  // 1.5 * 2^23
  constexpr float kMagic = 12582912.0f;
  float x[kKeysWs / 2];
#pragma unroll
  for (int i = 0; i < kKeysWs / 2; ++i) x[i] = __int_as_float(acc[i] + kMagicBits);
  const bool ragged = v0 < 64 || v1 < 64;
  if (ragged) maskKeys(x, v0, v1, c4, -INFINITY);
  // Maxima of the raw scores per half (the scales are >= 0), scaled afterwards; a scale of 0 on an
  // all-masked half gives NaN, which fmaxf drops.
  float a0 = -INFINITY, a1 = -INFINITY, b0 = -INFINITY, b1 = -INFINITY;
#pragma unroll
  for (int j = 0; j < kChunks / 2; ++j) {
    a0 = fmaxf(a0, fmaxf(x[4 * j], x[4 * j + 1]));
    a1 = fmaxf(a1, fmaxf(x[4 * j + 2], x[4 * j + 3]));
    b0 = fmaxf(b0, fmaxf(x[4 * (j + kChunks / 2)], x[4 * (j + kChunks / 2) + 1]));
    b1 = fmaxf(b1, fmaxf(x[4 * (j + kChunks / 2) + 2], x[4 * (j + kChunks / 2) + 3]));
  }
  const float2 alpha = newMaxima(st, fmaxf(st.m0, fmaxf((a0 - kMagic) * sc0, (b0 - kMagic) * sc1)),
                                 fmaxf(st.m1, fmaxf((a1 - kMagic) * sc0, (b1 - kMagic) * sc1)));
  // bias[half][row]
  const float bias00 = fmaf(-kMagic, sc0, pBias - st.m0), bias01 = fmaf(-kMagic, sc0, pBias - st.m1);
  const float bias10 = fmaf(-kMagic, sc1, pBias - st.m0), bias11 = fmaf(-kMagic, sc1, pBias - st.m1);
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const bool first = j < kChunks / 2;
    const float sc = first ? sc0 : sc1, br0 = first ? bias00 : bias10, br1 = first ? bias01 : bias11;
    x[4 * j] = ex2(fmaf(x[4 * j], sc, br0));
    x[4 * j + 1] = ex2(fmaf(x[4 * j + 1], sc, br0));
    x[4 * j + 2] = ex2(fmaf(x[4 * j + 2], sc, br1));
    x[4 * j + 3] = ex2(fmaf(x[4 * j + 3], sc, br1));
  }
  if (ragged) maskKeys(x, v0, v1, c4, 0.0f);  // masked keys: -inf * scale is NaN when the scale is 0
  return finishTile<PV8>(x, pf, st, alpha);
}

// The same for bf16 Q.K^T: fp32 scores x (overwritten by P), one scale (softmax scale * log2 e).
// Every tile has a valid key, so the maxima stay finite and masked keys come out 0.
template <bool PV8>
__device__ __forceinline__ float2 softmaxF32(float (&x)[kKeysWs / 2], PFrag<kKeysWs, PV8>& pf, RowState& st, float scale,
                                             int v0, int v1, int c4, float pBias) {
  constexpr int kChunks = kKeysWs / 8;
  if (v0 < 64 || v1 < 64) maskKeys(x, v0, v1, c4, -INFINITY);
  float a0 = -INFINITY, a1 = -INFINITY;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    a0 = fmaxf(a0, fmaxf(x[4 * j], x[4 * j + 1]));
    a1 = fmaxf(a1, fmaxf(x[4 * j + 2], x[4 * j + 3]));
  }
  const float2 alpha = newMaxima(st, fmaxf(st.m0, a0 * scale), fmaxf(st.m1, a1 * scale));
  const float b0 = pBias - st.m0, b1 = pBias - st.m1;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    x[4 * j] = ex2(fmaf(x[4 * j], scale, b0));
    x[4 * j + 1] = ex2(fmaf(x[4 * j + 1], scale, b0));
    x[4 * j + 2] = ex2(fmaf(x[4 * j + 2], scale, b1));
    x[4 * j + 3] = ex2(fmaf(x[4 * j + 3], scale, b1));
  }
  return finishTile<PV8>(x, pf, st, alpha);
}

// SPARSE (SLA's sparse branch, a.blocks): consumer c serves query blocks 4 * blockIdx.x + c and then
// 4 * blockIdx.x + c + 2 (its second pass, whose tiles follow the first's in its ring, so that the
// producer streams on while the consumer stores), each over its kc selected key blocks, two per
// 128-key tile (a missing second block of an odd kc is the first one again, masked), from a ring of
// its own (half the stages each); INT8 Q.K~, P.V on bf16 v or on e4m3 v^T in the block-major
// layout (prepareFp8V's blockMajor), one [HD][64] box per block.
template <int HD, bool PV8, bool PINGPONG, bool BF, bool SPARSE>
__global__ void __launch_bounds__(WsTiles<HD, PV8, BF, SPARSE>::kThreads, 1)
    sageWsKernel(const SageArgs a, const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                 const __grid_constant__ CUtensorMap mapV) {
  using T = WsTiles<HD, PV8, BF, SPARSE>;
  constexpr int S = T::kStages;
  constexpr int R = SPARSE ? S / 2 : S;  // stages per ring
  static_assert(!SPARSE || (R >= 2 && !BF && !PINGPONG), "the sparse kernel: INT8 Q.K~, two rings");
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const uint32_t sStages = sQ + T::kQBytes;
  const uint32_t barFull = sQ + T::kBarOffset, barEmpty = barFull + 8 * S, barQ = barEmpty + 8 * S;
  // Tile i of ring r (r = the consumer when SPARSE, else 0) sits in slot r * R + i % R, filled for
  // the (i / R)-th time.
  auto slot = [&](int r, int i) { return r * R + i % R; };
  auto stageAt = [&](int sl) { return sStages + sl * T::kStageBytes; };

  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int h = blockIdx.y, q0 = blockIdx.x * T::kRows;
  const int nTiles = SPARSE ? (a.kc + 1) / 2 : (a.nK + kKeysWs - 1) / kKeysWs;
  // SPARSE: the selected key blocks of query block qb (rows 64 qb..), or null past the last block.
  auto blockList = [&](int c) -> const int32_t* {
    const int qb = q0 / 64 + c;
    return qb < a.qBlocks ? a.blocks + (static_cast<int64_t>(h) * a.qBlocks + qb) * a.kc : nullptr;
  };

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      mbarInit(barFull + 8 * s, 1);
      mbarInit(barEmpty + 8 * s, SPARSE ? 4 : 8);  // one arrive per warp of the ring's consumers
    }
    mbarInit(barQ, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 2) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp == 0 && lane == 0) {
      if constexpr (SPARSE) {  // two boxes of 128 rows; a second one wholly past the end is not loaded
        const int boxes = q0 + 128 < a.qBlocks * 64 ? 2 : 1;
        mbarExpectTx(barQ, boxes * 128 * HD);
        for (int b = 0; b < boxes; ++b) tmaLoad3d(sQ + b * 128 * HD, &mapQ, 0, q0 + 128 * b, h, barQ);
      } else if constexpr (BF) {
        mbarExpectTx(barQ, T::kQBytes);
#pragma unroll
        for (int half = 0; half < HD / 64; ++half) tmaLoad3d(sQ + half * T::kRows * 128, &mapQ, 64 * half, q0, h, barQ);
      } else {
        mbarExpectTx(barQ, T::kQBytes);
        tmaLoad3d(sQ, &mapQ, 0, q0, h, barQ);
      }
      if constexpr (SPARSE) {
        for (int pass = 0; pass < T::kPasses; ++pass) {
        const int32_t* lists[2] = {blockList(2 * pass), blockList(2 * pass + 1)};
        for (int i = 0; i < nTiles; ++i)
          for (int c = 0; c < 2; ++c) {
            if (!lists[c]) continue;
            const int t = pass * nTiles + i, s = slot(c, t);  // the t-th tile of ring c
            if (t >= R) mbarWait(barEmpty + 8 * s, ((t / R) & 1) ^ 1);
            const uint32_t full = barFull + 8 * s, sK = stageAt(s), sV = sK + T::kKBytes;
            mbarExpectTx(full, T::kStageBytes);
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {  // 64 keys of one selected block into each half
              const int k0 = 64 * lists[c][min(2 * i + hf, a.kc - 1)];
              tmaLoad3d(sK + hf * 64 * HD, &mapK, 0, k0, h, full);
              if constexpr (PV8) {
                tmaLoad3d(sV + hf * HD * 64, &mapV, 0, k0 / 64 * HD, h, full);
              } else {
#pragma unroll
                for (int ch = 0; ch < HD / 64; ++ch) tmaLoad3d(sV + ch * kKeysWs * 128 + hf * 64 * 128, &mapV, 64 * ch, k0, h, full);
              }
            }
          }
        }
      } else {
      for (int i = 0; i < nTiles; ++i) {
        const int s = i % S, k0 = i * kKeysWs;
        if (i >= S) mbarWait(barEmpty + 8 * s, ((i / S) & 1) ^ 1);
        const uint32_t full = barFull + 8 * s, sK = stageAt(s), sV = sK + T::kKBytes;
        mbarExpectTx(full, T::kStageBytes);
        if constexpr (BF) {
#pragma unroll
          for (int half = 0; half < HD / 64; ++half) tmaLoad3d(sK + half * kKeysWs * 128, &mapK, 64 * half, k0, h, full);
        } else {
          tmaLoad3d(sK, &mapK, 0, k0, h, full);
        }
        if constexpr (PV8) {
          tmaLoad3d(sV, &mapV, k0, 0, h, full);
        } else {
#pragma unroll
          for (int half = 0; half < HD / 64; ++half) tmaLoad3d(sV + half * kKeysWs * 128, &mapV, 64 * half, k0, h, full);
        }
      }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");  // 24 * 128 + 240 * 256 <= 65536
    const int cw = wg;  // consumer 0 or 1
    const int ring = SPARSE ? cw : 0;
    const int g = lane >> 2, c4 = lane & 3;
    const float pBias = PV8 ? 8.807354922057604f : 0.0f;  // log2(448): e4m3 P = 448 p
    const float* ks = BF ? nullptr : a.kScale + h * a.kBlocks;
    const int myBar = 1 + cw, otherBar = 2 - cw;
    float o[HD / 2];
    std::conditional_t<BF, float, int> acc[kKeysWs / 2];
    PFrag<kKeysWs, PV8> pf, pn;
    RowState st;
    // The pass's state: its first tile's position in the ring, its selected key blocks (SPARSE),
    // its 64 rows of Q and (INT8) q's block scale, with softmax scale and log2 e folded in.
    int base = 0;
    const int32_t* list = nullptr;
    uint32_t sQw = 0;
    float qs = 0.0f;
    auto stage = [&](int i) { return stageAt(slot(ring, base + i)); };
    auto full = [&](int i) { mbarWait(barFull + 8 * slot(ring, base + i), ((base + i) / R) & 1); };
    // Q.K of tile i (issued, not committed), then its softmax into P (returns O's rescale factors).
    auto issueS = [&](int i) {
      if constexpr (BF) issueQKBf16<HD>(acc, sQw, T::kRows * 128, stage(i), kKeysWs * 128);
      else issueQK<HD, kKeysWs>(acc, sQw, stage(i));
    };
    auto softmax = [&](int i, PFrag<kKeysWs, PV8>& pout) {
      const int kValid = a.nK - i * kKeysWs, v0 = min(kValid, 64), v1 = max(0, min(kValid - 64, 64));
      if constexpr (BF) {
        return softmaxF32<PV8>(acc, pout, st, a.scaleLog2, v0, v1, c4, pBias);
      } else if constexpr (SPARSE) {
        const int j0 = list[2 * i], j1 = list[min(2 * i + 1, a.kc - 1)];
        const int v0 = min(64, a.nK - 64 * j0), v1 = 2 * i + 1 < a.kc ? min(64, a.nK - 64 * j1) : 0;
        return softmaxFolded<PV8>(acc, pout, st, qs * ks[j0], qs * ks[j1], v0, v1, c4, pBias);
      } else {
        const int kb = i * 2;
        return softmaxFolded<PV8>(acc, pout, st, qs * ks[kb], qs * ks[min(kb + 1, a.kBlocks - 1)], v0, v1, c4, pBias);
      }
    };
    auto issueP = [&](const PFrag<kKeysWs, PV8>& pin, uint32_t sV) {
      if constexpr (PV8 && SPARSE) issuePV8Blocks<HD>(o, pin, sV);
      else if constexpr (PV8) issuePV8<HD, kKeysWs>(o, pin, sV);
      else issuePV<HD, kKeysWs>(o, pin, sV);
    };
    auto release = [&](int i) {
      __syncwarp();
      if (lane == 0) mbarArrive(barEmpty + 8 * slot(ring, base + i));
    };
    // P_i (pin) . V_i overlapped with S_{i+1} -> P_{i+1} (pout).
    auto step = [&](int i, const PFrag<kKeysWs, PV8>& pin, PFrag<kKeysWs, PV8>& pout) {
      full(i + 1);
      if constexpr (PINGPONG) namedBarSync(myBar, 256);
      pinRegs(o);
      wgFence();
      issueS(i + 1);
      wgCommit();
      issueP(pin, stage(i) + T::kKBytes);
      wgCommit();
      if constexpr (PINGPONG) namedBarArrive(otherBar, 256);
      wgWait<1>();
      pinRegs(acc);
      const float2 alpha = softmax(i + 1, pout);
      wgWait<0>();
      pinRegs(o);
      release(i);
      rescaleRows<HD>(o, alpha);
    };
    auto lastPV = [&](int i, const PFrag<kKeysWs, PV8>& pin) {
      pinRegs(o);
      wgFence();
      issueP(pin, stage(i) + T::kKBytes);
      wgCommit();
      wgWait<0>();
      pinRegs(o);
      release(i);
    };

    mbarWait(barQ, 0);
    for (int pass = 0; pass < T::kPasses; ++pass, base += nTiles) {
      const int sub = cw + 2 * pass;  // which 64-row block of the CTA's rows
      if constexpr (SPARSE) {
        list = blockList(sub);
        if (!list) break;  // past the last query block: nothing was loaded for it
      }
      sQw = sQ + sub * 64 * (BF ? 128 : HD);
      qs = BF ? 0.0f : a.qScale[h * a.qBlocks + min(q0 / 64 + sub, a.qBlocks - 1)];
#pragma unroll
      for (int k = 0; k < HD / 2; ++k) o[k] = 0.0f;
      st = RowState{};
      full(0);
      wgFence();
      issueS(0);
      wgCommit();
      wgWait<0>();
      pinRegs(acc);
      softmax(0, pf);  // O is zero: no rescale
      if constexpr (PINGPONG) {
        if (cw == 1) namedBarArrive(otherBar, 256);  // consumer 0 issues first
      }
      pipelineTiles(nTiles, pf, pn, step, lastPV);
      // Consumer 1 arrived once more on consumer 0's barrier than consumer 0 synced on it.
      if constexpr (PINGPONG) {
        if (cw == 0) namedBarSync(1, 256);
      }
      storeRows<HD, PV8>(o, st, a, h, q0 + sub * 64 + warp * 16 + g, c4, PV8 ? 1.0f / kFp8Max : 1.0f);
    }
  }
}

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

EncodeTiled encodeTiled() {
  static const EncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    FF_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || p == nullptr)
      throw std::runtime_error("wgmma attention: the CUDA driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<EncodeTiled>(p);
  }();
  return fn;
}

// A 3-D tensor map (sizes and box innermost first, strides of dims 1 and 2 in bytes).
CUtensorMap tensorMap3d(CUtensorMapDataType type, const void* base, uint64_t d0, uint64_t d1, uint64_t d2,
                        uint64_t stride1, uint64_t stride2, uint32_t box0, uint32_t box1, int rowBytes) {
  CUtensorMap m;
  const cuuint64_t dims[3] = {d0, d1, d2};
  const cuuint64_t strides[2] = {stride1, stride2};
  const cuuint32_t box[3] = {box0, box1, 1};
  const cuuint32_t elemStrides[3] = {1, 1, 1};
  const CUtensorMapSwizzle swizzle = rowBytes == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const CUresult r = encodeTiled()(&m, type, 3, const_cast<void*>(base), dims, strides, box, elemStrides,
                                   CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) throw std::runtime_error("wgmma attention: cuTensorMapEncodeTiled failed (" + std::to_string(r) + ")");
  return m;
}

// bf16 rows [heads][n][HD] (strides in elements) read as 64-channel halves of `rows` rows.
template <int HD>
CUtensorMap bf16Halves(const void* base, int n, int heads, int64_t tok, int64_t head, uint32_t rows) {
  return tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, base, HD, n, heads, tok * 2, head * 2, 64, rows, 128);
}

template <int HD, bool PV8, bool PINGPONG, bool BF, bool SPARSE = false>
void launchKernel(const SageArgs& a, const CUtensorMap& mq, const CUtensorMap& mk, const CUtensorMap& mv, cudaStream_t stream) {
  using T = WsTiles<HD, PV8, BF, SPARSE>;
  static bool configured = false;
  if (!configured) {
    FF_CUDA(cudaFuncSetAttribute(sageWsKernel<HD, PV8, PINGPONG, BF, SPARSE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 T::kSmem));
    configured = true;
  }
  const dim3 grid((a.nQ + T::kRows - 1) / T::kRows, a.heads);
  sageWsKernel<HD, PV8, PINGPONG, BF, SPARSE><<<grid, T::kThreads, T::kSmem, stream>>>(a, mq, mk, mv);
  FF_CUDA_LAUNCHED("sageWsKernel");
}

// INT8 q / k~ [heads][blocks * 64][HD] as boxes of `rows` rows.
template <int HD>
CUtensorMap int8Rows(const int8_t* base, int blocks, int heads, int64_t tok, int64_t head, uint32_t rows) {
  return tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, base, HD, static_cast<uint64_t>(blocks) * 64, heads, tok, head, HD, rows, HD);
}

template <int HD, bool PV8, bool PINGPONG>
void launchWs(const SageArgs& a, cudaStream_t stream) {
  const CUtensorMap mq = int8Rows<HD>(a.q, a.qBlocks, a.heads, a.qTok, a.qHead, 128);
  const CUtensorMap mk = int8Rows<HD>(a.k, a.kBlocks, a.heads, a.kTok, a.kHead, kKeysWs);
  const CUtensorMap mv =
      PV8 ? tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.vt8, a.vtRow, HD, a.heads, a.vtRow, a.vtRow * HD, kKeysWs, HD, 128)
          : bf16Halves<HD>(a.v, a.nK, a.heads, a.vTok, a.vHead, kKeysWs);
  launchKernel<HD, PV8, PINGPONG, false>(a, mq, mk, mv, stream);
}

// SLA's sparse branch: K~ and V boxes of one 64-key block (PV8: block-major e4m3 V^T, a [HD][64]
// box per block, 64B swizzle).
template <int HD, bool PV8>
void launchWsSparse(const SageArgs& a, cudaStream_t stream) {
  const CUtensorMap mq = int8Rows<HD>(a.q, a.qBlocks, a.heads, a.qTok, a.qHead, 128);
  const CUtensorMap mk = int8Rows<HD>(a.k, a.kBlocks, a.heads, a.kTok, a.kHead, 64);
  const uint64_t vtRows = static_cast<uint64_t>(a.kBlocks) * HD;
  const CUtensorMap mv = PV8 ? tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.vt8, 64, vtRows, a.heads, 64, vtRows * 64, 64, HD, 64)
                             : bf16Halves<HD>(a.v, a.nK, a.heads, a.vTok, a.vHead, 64);
  launchKernel<HD, PV8, false, false, true>(a, mq, mk, mv, stream);
}

template <int HD>
void launchWsHd(const SageArgs& a, const WsOptions& o, cudaStream_t stream) {
  if (o.fp8) o.pingpong ? launchWs<HD, true, true>(a, stream) : launchWs<HD, true, false>(a, stream);
  else o.pingpong ? launchWs<HD, false, true>(a, stream) : launchWs<HD, false, false>(a, stream);
}

template <int HD>
void launchFlashWs(const FlashArgs& f, bool pingpong, cudaStream_t stream) {
  SageArgs a{};
  a.out = f.out;
  a.oHead = f.oHead;
  a.oTok = f.oTok;
  a.heads = f.heads;
  a.nQ = f.nQ;
  a.nK = f.nK;
  a.headDim = HD;
  a.scaleLog2 = f.scaleLog2;
  const CUtensorMap mq = bf16Halves<HD>(f.q, f.nQ, f.heads, f.qTok, f.qHead, 128);
  const CUtensorMap mk = bf16Halves<HD>(f.k, f.nK, f.heads, f.kTok, f.kHead, kKeysWs);
  const CUtensorMap mv = bf16Halves<HD>(f.v, f.nK, f.heads, f.vTok, f.vHead, kKeysWs);
  if (pingpong) launchKernel<HD, false, true, true>(a, mq, mk, mv, stream);
  else launchKernel<HD, false, false, true>(a, mq, mk, mv, stream);
}

}  // namespace

void sageAttentionWs(const SageArgs& a, const WsOptions& o, CUstream_st* stream) {
  if (a.blocks) {
    if (o.pingpong) throw std::invalid_argument("the warp-specialized SLA kernel has no ping-pong schedule");
    if (a.headDim == 64) o.fp8 ? launchWsSparse<64, true>(a, stream) : launchWsSparse<64, false>(a, stream);
    else o.fp8 ? launchWsSparse<128, true>(a, stream) : launchWsSparse<128, false>(a, stream);
  } else if (a.headDim == 64) launchWsHd<64>(a, o, stream);
  else launchWsHd<128>(a, o, stream);
}

void flashAttentionWs(const FlashArgs& f, bool pingpong, CUstream_st* stream) {
  if (f.headDim == 64) launchFlashWs<64>(f, pingpong, stream);
  else if (f.headDim == 128) launchFlashWs<128>(f, pingpong, stream);
  else throw std::invalid_argument("wgmma flash attention: head_dim must be 64 or 128, got " + std::to_string(f.headDim));
}

}  // namespace ff::cuda::sm90
