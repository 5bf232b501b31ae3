// Dense attention runs by default on the warp-specialized TMA kernel of attention_sm90_ws.cu
// (FF_CUDA_WGMMA_KERNEL=ws; on an H200 1.65x this file's kernel with e4m3 P.V, 1.8x with bf16,
// docs/CUDA.md), with e4m3 P.V by default (FF_CUDA_WGMMA_PV=fp8). This file keeps the cp.async
// kernel, which SLA's sparse branch and the serial schedule run and FF_CUDA_WGMMA_KERNEL=cpasync
// selects for dense attention.
//
// Sage attention on Hopper's warpgroup MMA (sm_90a only; compiled with
// -gencode=arch=compute_90a,code=sm_90a, see native/CMakeLists.txt). Same math as attnKernel's Sage
// mode in attention.cu, after the same quantization (prepareSage): S = Q.K~^T on INT8 wgmma
// (m64nNk32, int32 accumulation) dequantized by qScale * kScale (softmax scale and log2 e folded
// into qScale), online softmax in fp32 registers (base 2), P.V on bf16 (or, with
// FF_CUDA_WGMMA_PV=fp8, e4m3) wgmma with P from registers.
//
// CTA: WGS warpgroups of 128 threads, each owning 64 query rows (dense: 2 warpgroups, 128 rows,
// 128-key tiles; SLA's sparse branch: 1 warpgroup per 64-row query block, 64-key tiles). K~ (INT8)
// and V (bf16) tiles stream through shared memory with cp.async issued by every thread (no producer
// warpgroup or TMA yet), written straight into the swizzled layouts wgmma reads.
//
// Layouts, descriptors and register maps: attention_sm90.cuh.
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
// m64nNk32 e4m3 with P from registers; the epilogue scales O back.#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_sm90.cuh"
#include "kernels/cuda/env.h"

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
  quadMax(mx0, mx1);
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
    // One step: P_i (pin) . V_i overlapped with S_{i+1} -> P_{i+1} (pout).
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
    pipelineTiles(nTiles, pf, pn, step, lastPV);
  }

  // e4m3 P.V: undo P's scale (kFp8Max) and V's (max|v| / kFp8Max).
  storeRows<HD, PV8>(o, st, a, h, q0 + wg * 64 + warp * 16 + g, c4, 1.0f / (kFp8Max * kFp8Max));
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
// FF_CUDA_WGMMA_SERIAL=1: the serial schedule; FF_CUDA_WGMMA_PV=fp8|bf16: e4m3 P.V (overlapped
// schedule) or bf16.
enum class PvMode { Bf16, Bf16Serial, Fp8 };

// Unset, FF_CUDA_WGMMA_PV is e4m3 over at least kFp8MinKeys keys (dense or SLA's sparse branch)
// and bf16 below. On an H200: dense 8.23 ms with e4m3 against 10.71 with bf16 at
// [1, 12, 32760, 128] (cos 0.99922 / 0.99991 against fp32), but 0.059 against 0.049 ms at
// [1, 3, 2304, 64]; SLA at top-k 0.1 2.06 against 2.23 ms at [1, 12, 32760, 128] and 33.0 against
// 37.9 at [1, 40, 75600, 128]. Under FF_CUDA_WGMMA_SERIAL=1 it is bf16, the serial schedule's only
// one.
constexpr int kFp8MinKeys = 16384;
PvMode pvMode(const SageArgs& a) {
  const std::string p = envChoice("FF_CUDA_WGMMA_PV", {"bf16", "fp8"});
  const char* serialEnv = std::getenv("FF_CUDA_WGMMA_SERIAL");
  const bool serial = serialEnv != nullptr && serialEnv[0] == '1';
  if (p == "fp8" || (p.empty() && !serial && a.nK >= kFp8MinKeys)) return PvMode::Fp8;
  return serial ? PvMode::Bf16Serial : PvMode::Bf16;
}

template <int HD, int WGS, int BN>
void launchSchedule(const SageArgs& a, int rowBlocks, PvMode mode, cudaStream_t stream) {
  if (mode == PvMode::Fp8) launch<HD, WGS, BN, true, true>(a, rowBlocks, stream);
  else if (mode == PvMode::Bf16Serial) launch<HD, WGS, BN, false, false>(a, rowBlocks, stream);
  else launch<HD, WGS, BN, true, false>(a, rowBlocks, stream);
}

// Which kernel runs dense attention (FF_CUDA_WGMMA_KERNEL): ws (default) = the warp-specialized TMA
// kernel of attention_sm90_ws.cu; wspp = the same with its two consumer warpgroups taking turns at
// the tensor cores; cpasync = sageWgmmaKernel above. SLA's sparse branch runs the ws kernel's
// sparse form (no ping-pong) under ws and wspp, sageWgmmaKernel under cpasync; the serial schedule
// always runs sageWgmmaKernel.
enum class DenseKernel { CpAsync, Ws, WsPingPong };

DenseKernel denseKernel() {
  const std::string k = envChoice("FF_CUDA_WGMMA_KERNEL", {"cpasync", "ws", "wspp"});
  if (k == "cpasync") return DenseKernel::CpAsync;
  return k == "wspp" ? DenseKernel::WsPingPong : DenseKernel::Ws;
}

// The kernel that runs: the serial schedule only exists in sageWgmmaKernel.
DenseKernel kernelFor(PvMode mode) { return mode == PvMode::Bf16Serial ? DenseKernel::CpAsync : denseKernel(); }

template <int HD>
void launchHd(const SageArgs& a, PvMode mode, cudaStream_t stream) {
  const DenseKernel dense = kernelFor(mode);
  if (dense != DenseKernel::CpAsync) {
    WsOptions o;  // SLA's sparse branch on the ws kernel: no ping-pong
    o.fp8 = mode == PvMode::Fp8;
    o.pingpong = dense == DenseKernel::WsPingPong && !a.blocks;
    sageAttentionWs(a, o, stream);
  }
  else if (a.blocks) launchSchedule<HD, 1, 64>(a, a.qBlocks, mode, stream);
  else launchSchedule<HD, 2, 128>(a, (a.nQ + 127) / 128, mode, stream);
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
  return hopper && (headDim == 64 || headDim == 128);
}

bool sparseVtBlockMajor(int nK) {
  SageArgs a{};
  a.nK = nK;
  const PvMode mode = pvMode(a);
  return mode == PvMode::Fp8 && kernelFor(mode) != DenseKernel::CpAsync;
}

void sageAttention(const SageArgs& a, CUstream_st* stream) {
  if (!available(a.headDim))
    throw std::invalid_argument("wgmma attention needs an sm_90 device and head_dim 64 or 128, got head_dim " +
                                std::to_string(a.headDim));
  const PvMode mode = pvMode(a);
  if (mode == PvMode::Fp8 && !a.vtReady) {
    if (!a.vt8 || !a.vAmax || a.vtRow < (a.nK + 127) / 128 * 128) throw std::invalid_argument("wgmma FP8 P.V: no V^T workspace");
    // the ws kernel's sparse form reads V^T block by block (vtRow >= kBlocks * 64: the same bytes)
    const bool blockMajor = a.blocks && kernelFor(mode) != DenseKernel::CpAsync;
    if (a.headDim == 64) prepareFp8V<64>(a, stream, blockMajor);
    else prepareFp8V<128>(a, stream, blockMajor);
  }
  if (a.headDim == 64) launchHd<64>(a, mode, stream);
  else launchHd<128>(a, mode, stream);
}

}  // namespace ff::cuda::sm90

