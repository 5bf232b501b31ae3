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
// Tensor maps (3-D, innermost first): q~ and k~ INT8 {hd, blocks * 64, heads}; v bf16
// {hd, nK, heads} with the caller's strides, read as 64-channel halves; e4m3 v^T
// {vtRow, hd, heads}. Shared layouts are attention_sm90.cuh's (TMA's 128B/64B swizzle is the same
// XOR of address bits that swizzled<> computes, given 1024-byte aligned tiles).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_sm90.cuh"

namespace ff::cuda::sm90 {

namespace {

constexpr int kKeysWs = 128;  // keys per tile

// Two consumer warpgroups of 64 query rows each, one producer warpgroup after them.
template <int HD, bool PV8>
struct WsTiles {
  static constexpr int kRows = 128;  // query rows per CTA
  static constexpr int kThreads = 384;
  static constexpr int kQBytes = kRows * HD;
  static constexpr int kKBytes = kKeysWs * HD;
  static constexpr int kVBytes = kKeysWs * HD * (PV8 ? 1 : 2);
  static constexpr int kStageBytes = kKBytes + kVBytes;
  static constexpr int kStages = (220 * 1024 - kQBytes) / kStageBytes;  // 4 (bf16) or 6 (e4m3) at hd 128
  static constexpr int kBarOffset = kQBytes + kStages * kStageBytes;
  static constexpr int kSmem = kBarOffset + (2 * kStages + 1) * 8 + 1024;  // + slack to align the base to 1024
  static_assert(kStages >= 2, "at least two stages");
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

// The int32 scores of one tile (keys k0..; kValid of them inside the sequence) -> P fragments;
// updates the running maxima and sums, returns the factors (rows g, g + 8) that rescale O.
// sc0 / sc1: q scale * k scale of the tile's two 64-key halves; pBias: log2 of P's scale.
template <bool PV8>
__device__ __forceinline__ float2 softmaxFolded(const int (&acc)[kKeysWs / 2], PFrag<kKeysWs, PV8>& pf, RowState& st,
                                                float sc0, float sc1, int kValid, int c4, float pBias) {
  constexpr int kChunks = kKeysWs / 8;
  constexpr int kMagicBits = 0x4B400000;  // 1.5 * 2^23
  constexpr float kMagic = 12582912.0f;
  float x[kKeysWs / 2];
#pragma unroll
  for (int i = 0; i < kKeysWs / 2; ++i) x[i] = __int_as_float(acc[i] + kMagicBits);
  const bool ragged = kValid < kKeysWs;
  if (ragged) {
#pragma unroll
    for (int j = 0; j < kChunks; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (8 * j + 2 * c4 + (e & 1) >= kValid) x[4 * j + e] = -INFINITY;
  }
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
  float mx0 = fmaxf(st.m0, fmaxf((a0 - kMagic) * sc0, (b0 - kMagic) * sc1));
  float mx1 = fmaxf(st.m1, fmaxf((a1 - kMagic) * sc0, (b1 - kMagic) * sc1));
  quadMax(mx0, mx1);
  const float2 alpha = make_float2(ex2(st.m0 - mx0), ex2(st.m1 - mx1));
  st.m0 = mx0;
  st.m1 = mx1;
  // bias[half][row]
  const float bias00 = fmaf(-kMagic, sc0, pBias - mx0), bias01 = fmaf(-kMagic, sc0, pBias - mx1);
  const float bias10 = fmaf(-kMagic, sc1, pBias - mx0), bias11 = fmaf(-kMagic, sc1, pBias - mx1);
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const bool first = j < kChunks / 2;
    const float sc = first ? sc0 : sc1, br0 = first ? bias00 : bias10, br1 = first ? bias01 : bias11;
    x[4 * j] = ex2(fmaf(x[4 * j], sc, br0));
    x[4 * j + 1] = ex2(fmaf(x[4 * j + 1], sc, br0));
    x[4 * j + 2] = ex2(fmaf(x[4 * j + 2], sc, br1));
    x[4 * j + 3] = ex2(fmaf(x[4 * j + 3], sc, br1));
  }
  if (ragged) {  // masked keys: -inf * scale is NaN when the scale is 0
#pragma unroll
    for (int j = 0; j < kChunks; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (8 * j + 2 * c4 + (e & 1) >= kValid) x[4 * j + e] = 0.0f;
  }
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    sum0 += x[4 * j] + x[4 * j + 1];
    sum1 += x[4 * j + 2] + x[4 * j + 3];
  }
  st.l0 = st.l0 * alpha.x + sum0;
  st.l1 = st.l1 * alpha.y + sum1;
  packP<kKeysWs, PV8, true>(x, pf, 1.0f);
  return alpha;
}

template <int HD, bool PV8, bool PINGPONG>
__global__ void __launch_bounds__(WsTiles<HD, PV8>::kThreads, 1)
    sageWsKernel(const SageArgs a, const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                 const __grid_constant__ CUtensorMap mapV) {
  using T = WsTiles<HD, PV8>;
  constexpr int S = T::kStages;
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const uint32_t sStages = sQ + T::kQBytes;
  const uint32_t barFull = sQ + T::kBarOffset, barEmpty = barFull + 8 * S, barQ = barEmpty + 8 * S;
  auto stage = [&](int i) { return sStages + (i % S) * T::kStageBytes; };

  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int h = blockIdx.y, q0 = blockIdx.x * T::kRows;
  const int nTiles = (a.nK + kKeysWs - 1) / kKeysWs;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      mbarInit(barFull + 8 * s, 1);
      mbarInit(barEmpty + 8 * s, 8);  // one arrive per consumer warp
    }
    mbarInit(barQ, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 2) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp == 0 && lane == 0) {
      mbarExpectTx(barQ, T::kQBytes);
      tmaLoad3d(sQ, &mapQ, 0, q0, h, barQ);
      for (int i = 0; i < nTiles; ++i) {
        const int s = i % S, k0 = i * kKeysWs;
        if (i >= S) mbarWait(barEmpty + 8 * s, ((i / S) & 1) ^ 1);
        const uint32_t full = barFull + 8 * s, sK = stage(i), sV = sK + T::kKBytes;
        mbarExpectTx(full, T::kStageBytes);
        tmaLoad3d(sK, &mapK, 0, k0, h, full);
        if constexpr (PV8) {
          tmaLoad3d(sV, &mapV, k0, 0, h, full);
        } else {
#pragma unroll
          for (int half = 0; half < HD / 64; ++half) tmaLoad3d(sV + half * kKeysWs * 128, &mapV, 64 * half, k0, h, full);
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");  // 24 * 128 + 240 * 256 <= 65536
    const int cw = wg;  // consumer 0 or 1
    const int g = lane >> 2, c4 = lane & 3;
    const float qs = a.qScale[h * a.qBlocks + min((q0 + cw * 64) / 64, a.qBlocks - 1)];
    const float* ks = a.kScale + h * a.kBlocks;
    auto scales = [&](int i) {
      const int kb = i * 2;
      return make_float2(qs * ks[kb], qs * ks[min(kb + 1, a.kBlocks - 1)]);
    };
    const float pBias = PV8 ? 8.807354922057604f : 0.0f;  // log2(448): e4m3 P = 448 p
    const uint32_t sQw = sQ + cw * 64 * HD;
    float o[HD / 2];
    int acc[kKeysWs / 2];
    PFrag<kKeysWs, PV8> pf, pn;
#pragma unroll
    for (int i = 0; i < HD / 2; ++i) o[i] = 0.0f;
    RowState st;
    const int myBar = 1 + cw, otherBar = 2 - cw;
    auto issueP = [&](const PFrag<kKeysWs, PV8>& pin, uint32_t sV) {
      if constexpr (PV8) issuePV8<HD, kKeysWs>(o, pin, sV);
      else issuePV<HD, kKeysWs>(o, pin, sV);
    };
    auto release = [&](int i) {
      __syncwarp();
      if (lane == 0) mbarArrive(barEmpty + 8 * (i % S));
    };

    mbarWait(barQ, 0);
    mbarWait(barFull, 0);
    wgFence();
    issueQK<HD, kKeysWs>(acc, sQw, stage(0));
    wgCommit();
    wgWait<0>();
    pinRegs(acc);
    {
      const float2 sc = scales(0);
      softmaxFolded<PV8>(acc, pf, st, sc.x, sc.y, a.nK, c4, pBias);  // O is zero: no rescale
    }
    if constexpr (PINGPONG) {
      if (cw == 1) namedBarArrive(otherBar, 256);  // consumer 0 issues first
    }
    // P_i (pin) . V_i overlapped with S_{i+1} -> P_{i+1} (pout).
    auto step = [&](int i, const PFrag<kKeysWs, PV8>& pin, PFrag<kKeysWs, PV8>& pout) {
      mbarWait(barFull + 8 * ((i + 1) % S), ((i + 1) / S) & 1);
      if constexpr (PINGPONG) namedBarSync(myBar, 256);
      pinRegs(o);
      wgFence();
      issueQK<HD, kKeysWs>(acc, sQw, stage(i + 1));
      wgCommit();
      issueP(pin, stage(i) + T::kKBytes);
      wgCommit();
      if constexpr (PINGPONG) namedBarArrive(otherBar, 256);
      wgWait<1>();
      pinRegs(acc);
      const float2 sc = scales(i + 1);
      const float2 alpha = softmaxFolded<PV8>(acc, pout, st, sc.x, sc.y, a.nK - (i + 1) * kKeysWs, c4, pBias);
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
    pipelineTiles(nTiles, pf, pn, step, lastPV);
    // Consumer 1 arrived once more on consumer 0's barrier than consumer 0 synced on it.
    if constexpr (PINGPONG) {
      if (cw == 0) namedBarSync(1, 256);
    }
    storeRows<HD, PV8>(o, st, a, h, q0 + cw * 64 + warp * 16 + g, c4, PV8 ? 1.0f / kFp8Max : 1.0f);
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

template <int HD, bool PV8, bool PINGPONG>
void launchWs(const SageArgs& a, cudaStream_t stream) {
  using T = WsTiles<HD, PV8>;
  static bool configured = false;
  if (!configured) {
    FF_CUDA(cudaFuncSetAttribute(sageWsKernel<HD, PV8, PINGPONG>, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmem));
    configured = true;
  }
  const uint64_t qRows = static_cast<uint64_t>(a.qBlocks) * 64, kRows = static_cast<uint64_t>(a.kBlocks) * 64;
  const CUtensorMap mq = tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.q, HD, qRows, a.heads, a.qTok, a.qHead, HD, T::kRows, HD);
  const CUtensorMap mk = tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.k, HD, kRows, a.heads, a.kTok, a.kHead, HD, kKeysWs, HD);
  const CUtensorMap mv =
      PV8 ? tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.vt8, a.vtRow, HD, a.heads, a.vtRow, a.vtRow * HD, kKeysWs, HD, 128)
          : tensorMap3d(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, a.v, HD, a.nK, a.heads, a.vTok * 2, a.vHead * 2, 64, kKeysWs, 128);
  const dim3 grid((a.nQ + T::kRows - 1) / T::kRows, a.heads);
  sageWsKernel<HD, PV8, PINGPONG><<<grid, T::kThreads, T::kSmem, stream>>>(a, mq, mk, mv);
  FF_CUDA_LAUNCHED("sageWsKernel");
}

template <int HD>
void launchWsHd(const SageArgs& a, const WsOptions& o, cudaStream_t stream) {
  if (o.fp8) o.pingpong ? launchWs<HD, true, true>(a, stream) : launchWs<HD, true, false>(a, stream);
  else o.pingpong ? launchWs<HD, false, true>(a, stream) : launchWs<HD, false, false>(a, stream);
}

}  // namespace

void sageAttentionWs(const SageArgs& a, const WsOptions& o, CUstream_st* stream) {
  if (a.blocks) throw std::invalid_argument("the warp-specialized wgmma kernel is dense only");
  if (a.headDim == 64) launchWsHd<64>(a, o, stream);
  else launchWsHd<128>(a, o, stream);
}

}  // namespace ff::cuda::sm90
