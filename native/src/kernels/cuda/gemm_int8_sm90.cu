// W8A8 GEMM with the dequantization in its epilogue on Hopper (CUTLASS 3's TMA warp-specialized
// int8 kernel): y (bf16) = act(xScale[m] * (wScale[n] * acc) + bias[n]), or for the residual
// linears residual (fp32 or bf16, in place) += gate[n] * (xScale[m] * (wScale[n] * acc) + bias[n]);
// acc = xq[m] . wq[n] in int32, so the int32 product never reaches memory (gemmInt8 +
// dequantInt8 write and read it back). The FFN's FP8 form: fc1's epilogue writes act(...) as
// e4m3 (gemmInt8DequantFp8) and fc2 is an e4m3 x e4m3 product (fp32 accumulation, promoted out of
// the tensor cores' accumulator every few k-blocks) into the same residual epilogue
// (gemmFp8DequantResidual), so the FFN's wide intermediate is written once, at one byte a value,
// and never requantized. Built only with CUTLASS's headers (FF_CUTLASS_ROOT, see native/CMakeLists.txt).
#include "kernels/cuda/gemm.h"

#ifdef FF_CUDA_HAVE_CUTLASS

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/env.h"

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_compute_tma_warpspecialized.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_load_tma_warpspecialized.hpp"
#include "cutlass/epilogue/thread/activation.h"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"

namespace ff::cuda {

namespace {

using namespace cute;
namespace fusion = cutlass::epilogue::fusion;

constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;

// Two schedules of the int8 mainloop: cooperative (both consumer warpgroups on one 128 x 256 tile)
// and ping-pong (each warpgroup its own 128 x 128 tile, one's epilogue overlapping the other's
// mainloop, which pays where K is short and the epilogue a large share). K 128 bytes per stage.
// Cluster: 1 x 1, or 2 x 1 (two CTAs of neighbouring M tiles share each weight tile through TMA
// multicast, halving the weights' traffic from L2; FF_CUDA_INT8_GEMM_CLUSTER).
template <int ClusterM = 1>
struct Cooperative {
  using Tile = Shape<_128, _256, _128>;
  using Cluster = Shape<Int<ClusterM>, _1, _1>;
  using Mainloop = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using Epilogue = cutlass::epilogue::TmaWarpSpecializedCooperative;
};
template <int ClusterM = 1>
struct PingPong {
  using Tile = Shape<_128, _128, _128>;
  using Cluster = Shape<Int<ClusterM>, _1, _1>;
  using Mainloop = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
  using Epilogue = cutlass::epilogue::TmaWarpSpecialized;
};
// The e4m3 mainloop with fast accumulation: the products accumulate in the tensor cores' own
// accumulator throughout, without CUTLASS's periodic promotion into a second fp32 one (which
// costs registers and issue slots; FF_CUDA_FP8_ACCUM=promoted keeps it, on ping-pong).
template <int ClusterM = 1>
struct CooperativeFp8Fast : Cooperative<ClusterM> {
  using Mainloop = cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8FastAccum;
};
template <int ClusterM = 1>
struct PingPongFp8Fast : PingPong<ClusterM> {
  using Mainloop = cutlass::gemm::KernelTmaWarpSpecializedPingpongFP8FastAccum;
};

// The epilogues over a CTA tile Tile.
template <class Tile>
struct Fusions {
  template <class Stride>
  using Row = fusion::Sm90RowBroadcast<0, Tile, float, float, Stride>;
  // t = xScale[m] * (wScale[n] * acc) + bias[n] (fp32); bias may be null (0).
  using Dequantized = fusion::Sm90EVT<
      fusion::Sm90Compute<cutlass::homogeneous_multiply_add, float, float, kRound>,
      fusion::Sm90ColBroadcast<0, Tile, float, float, Stride<_1, _0, int64_t>>,  // xScale[m]
      fusion::Sm90EVT<fusion::Sm90Compute<cutlass::multiplies, float, float, kRound>, Row<Stride<_0, _1, int64_t>>,  // wScale[n]
                      fusion::Sm90AccFetch>,
      Row<Stride<_0, _1, int64_t>>>;  // bias[n]
  // act(t) as T (bf16, or e4m3 saturated to +-448 by the conversion).
  template <template <class> class Act, class T>
  using To = fusion::Sm90EVT<fusion::Sm90Compute<Act, T, float, kRound>, Dequantized>;
  // residual[m, n] + gate[n] * t computed in fp32 and stored as R (fp32 or bf16; C = D = the
  // residual; gate may be null: 1).
  template <class R>
  using GatedResidual = fusion::Sm90EVT<fusion::Sm90Compute<cutlass::homogeneous_multiply_add, R, float, kRound>,
                                        Row<Stride<_0, _1, int64_t>>,  // gate[n]
                                        Dequantized, fusion::Sm90SrcFetch<R>>;

  // xScale null: xMul for every row.
  static typename Dequantized::Arguments dequant(const float* xScale, const float* wScale, const float* bias,
                                                 float xMul = 1.0f) {
    return {{xScale, xMul, {_1{}, _0{}, int64_t{0}}},  // xScale * (wScale * acc) + bias
            {{wScale, 0.0f, {_0{}, _1{}, int64_t{0}}}, {}, {}},
            {bias, 0.0f, {_0{}, _1{}, int64_t{0}}},
            {}};
  }
};

// The int8 x int8 -> int32 (or e4m3 x e4m3 -> fp32) mainloop on schedule S with the epilogue
// Fusion writing ElementD (row-major, row stride ld), reading C of the same type and stride when
// the fusion fetches it (ElementC void otherwise).
template <class S, class Fusion, class ElementC, class ElementD, class ElementAB = int8_t>
struct FusedGemm {
  using Acc = std::conditional_t<std::is_same_v<ElementAB, int8_t>, int32_t, float>;
  static constexpr int kAlign = 16 / static_cast<int>(sizeof(ElementD));  // C, when fetched, is ElementD too
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, typename S::Tile, typename S::Cluster,
      cutlass::epilogue::collective::EpilogueTileAuto, Acc, float, ElementC, cutlass::layout::RowMajor, kAlign,
      ElementD, cutlass::layout::RowMajor, kAlign, typename S::Epilogue, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, cutlass::layout::RowMajor, 16, ElementAB,
      cutlass::layout::ColumnMajor, 16, Acc, typename S::Tile, typename S::Cluster,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      typename S::Mainloop>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static void run(const char* who, int m, int n, int k, const void* x, const void* w,
                  const typename Fusion::Arguments& fusionArgs, const void* c, void* d, int64_t ld, cudaStream_t stream) {
    const typename Kernel::StrideA sa = make_stride(static_cast<int64_t>(k), _1{}, int64_t{0});
    const typename Kernel::StrideB sb = make_stride(static_cast<int64_t>(k), _1{}, int64_t{0});
    const typename Kernel::StrideD sd = make_stride(ld, _1{}, int64_t{0});
    const typename Kernel::StrideC sc = make_stride(ld, _1{}, int64_t{0});
    typename Gemm::Arguments args{cutlass::gemm::GemmUniversalMode::kGemm,
                                  {m, n, k, 1},
                                  {static_cast<const ElementAB*>(x), sa, static_cast<const ElementAB*>(w), sb},
                                  {fusionArgs, static_cast<const typename Epilogue::ElementC*>(c), sc,
                                   static_cast<typename Epilogue::ElementD*>(d), sd}};
    Gemm gemm;
    if (gemm.can_implement(args) != cutlass::Status::kSuccess)
      throw std::invalid_argument(std::string(who) + ": shape " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                                  std::to_string(k) + " (row stride " + std::to_string(ld) + ") not supported");
    // The persistent tile scheduler asks for none; should a build ask, it is stream-ordered memory.
    const size_t wsBytes = Gemm::get_workspace_size(args);
    void* ws = nullptr;
    if (wsBytes > 0 && cudaMallocAsync(&ws, wsBytes, stream) != cudaSuccess)
      throw std::runtime_error(std::string(who) + ": no workspace of " + std::to_string(wsBytes) + " bytes");
    const cutlass::Status init = gemm.initialize(args, ws, stream);
    const cutlass::Status ran = init == cutlass::Status::kSuccess ? gemm.run(stream) : init;
    if (ws != nullptr) cudaFreeAsync(ws, stream);
    if (init != cutlass::Status::kSuccess) throw std::runtime_error(std::string(who) + ": initialize failed");
    if (ran != cutlass::Status::kSuccess) throw std::runtime_error(std::string(who) + ": launch failed");
  }
};

// Which schedule runs (FF_CUDA_INT8_GEMM_SCHEDULE, bench/gpu's switch): auto (or unset) =
// ping-pong up to kPingPongMaxK, cooperative above; coop or pingpong force one.
constexpr int kPingPongMaxK = 4096;
bool pingPong(int k) {
  const std::string v = envChoice("FF_CUDA_INT8_GEMM_SCHEDULE", {"auto", "coop", "pingpong"});
  if (v.empty() || v == "auto") return k <= kPingPongMaxK;
  return v == "pingpong";
}

// The cluster (FF_CUDA_INT8_GEMM_CLUSTER): auto (or unset) = 2x1 for a wide, short product (n
// above kPingPongMaxK, k up to it: the FFN's fc1, 1.35 against 1.13 POP/s on ping-pong on an H100,
// where every other DiT shape ran slower on 2x1), 1x1 otherwise; 1x1 or 2x1 force one.
bool cluster2x1(int n, int k) {
  const std::string v = envChoice("FF_CUDA_INT8_GEMM_CLUSTER", {"auto", "1x1", "2x1"});
  if (v.empty() || v == "auto") return n > kPingPongMaxK && k <= kPingPongMaxK;
  return v == "2x1";
}

// Runs F<schedule> with the schedule pingPong(k) picks and the cluster cluster2x1(n, k) picks.
template <template <int> class Ping, template <int> class Coop, class F>
void onSchedule(int n, int k, F&& f) {
  const bool pp = pingPong(k), c2 = cluster2x1(n, k);
  if (pp && c2) f(Ping<2>{});
  else if (pp) f(Ping<1>{});
  else if (c2) f(Coop<2>{});
  else f(Coop<1>{});
}

template <class S>
void toBf16(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
            const float* bias, bool gelu, void* y, int64_t ldy, cudaStream_t stream) {
  using F = Fusions<typename S::Tile>;
  using bf16 = cutlass::bfloat16_t;
  using Gelu = FusedGemm<S, typename F::template To<cutlass::epilogue::thread::GELU_taylor, bf16>, void, bf16>;
  using Plain = FusedGemm<S, typename F::template To<cutlass::epilogue::thread::Identity, bf16>, void, bf16>;
  if (gelu) Gelu::run("gemmInt8Dequant", m, n, k, x, w, {F::dequant(xScale, wScale, bias), {}}, nullptr, y, ldy, stream);
  else Plain::run("gemmInt8Dequant", m, n, k, x, w, {F::dequant(xScale, wScale, bias), {}}, nullptr, y, ldy, stream);
}

template <class S>
void geluFp8(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
             const float* bias, void* y, int64_t ldy, cudaStream_t stream) {
  using F = Fusions<typename S::Tile>;
  using e4m3 = cutlass::float_e4m3_t;
  FusedGemm<S, typename F::template To<cutlass::epilogue::thread::GELU_taylor, e4m3>, void, e4m3>::run(
      "gemmInt8DequantFp8", m, n, k, x, w, {F::dequant(xScale, wScale, bias), {}}, nullptr, y, ldy, stream);
}

// ElementAB int8_t: x and w INT8 with xScale per row; float_e4m3_t: x and w e4m3, xScale null
// (every row xMul). The residual r is fp32, or bf16 where bf16Residual.
template <class S, class ElementAB>
void residualGemm(const char* who, int m, int n, int k, const void* x, const void* w, const float* xScale, float xMul,
                  const float* wScale, const float* bias, const float* gate, void* r, int64_t ld, bool bf16Residual,
                  cudaStream_t stream) {
  using F = Fusions<typename S::Tile>;
  auto run = [&](auto residual) {
    using R = decltype(residual);
    const typename F::template GatedResidual<R>::Arguments args{
        {gate, 1.0f, {_0{}, _1{}, int64_t{0}}}, F::dequant(xScale, wScale, bias, xMul), {}, {}};
    FusedGemm<S, typename F::template GatedResidual<R>, R, R, ElementAB>::run(who, m, n, k, x, w, args, r, r, ld, stream);
  };
  if (bf16Residual) run(cutlass::bfloat16_t{});
  else run(float{});
}

// TMA's 16-byte rows: k int8 values, n and the row stride in elements of the output.
void checkShape(const char* who, int n, int k, int64_t ld, int perVector) {
  if (n <= 0 || k <= 0 || k % 16 != 0 || n % perVector != 0 || ld % perVector != 0 || ld < n)
    throw std::invalid_argument(std::string(who) + ": k (" + std::to_string(k) + ") must be a multiple of 16, n (" +
                                std::to_string(n) + ") and the row stride (" + std::to_string(ld) + ") of " +
                                std::to_string(perVector) + ", row stride >= n");
}

}  // namespace

bool gemmInt8DequantAvailable() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  return major == 9;
}

void gemmInt8Dequant(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
                     const float* bias, bool gelu, void* y, int64_t ldy, CUstream_st* stream) {
  if (m <= 0) return;
  checkShape("gemmInt8Dequant", n, k, ldy, 8);
  if (!gemmInt8DequantAligned(x, w, xScale, wScale, bias, y))
    throw std::invalid_argument("gemmInt8Dequant: every pointer must be 16-byte aligned");
  onSchedule<PingPong, Cooperative>(n, k, [&](auto s) {
    toBf16<decltype(s)>(m, n, k, x, w, xScale, wScale, bias, gelu, y, ldy, stream);
  });
}

void gemmInt8DequantResidual(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale,
                             const float* wScale, const float* bias, const float* gate, void* residual, int64_t ld,
                             bool bf16Residual, CUstream_st* stream) {
  if (m <= 0) return;
  checkShape("gemmInt8DequantResidual", n, k, ld, bf16Residual ? 8 : 4);
  if (!gemmInt8DequantAligned(x, w, xScale, wScale, bias, residual, gate))
    throw std::invalid_argument("gemmInt8DequantResidual: every pointer must be 16-byte aligned");
  const char* who = "gemmInt8DequantResidual";
  onSchedule<PingPong, Cooperative>(n, k, [&](auto s) {
    residualGemm<decltype(s), int8_t>(who, m, n, k, x, w, xScale, 1.0f, wScale, bias, gate, residual, ld, bf16Residual,
                                      stream);
  });
}

void gemmInt8DequantFp8(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
                        const float* bias, void* y, int64_t ldy, CUstream_st* stream) {
  if (m <= 0) return;
  checkShape("gemmInt8DequantFp8", n, k, ldy, 16);
  if (!gemmInt8DequantAligned(x, w, xScale, wScale, bias, y))
    throw std::invalid_argument("gemmInt8DequantFp8: every pointer must be 16-byte aligned");
  onSchedule<PingPong, Cooperative>(n, k, [&](auto s) {
    geluFp8<decltype(s)>(m, n, k, x, w, xScale, wScale, bias, y, ldy, stream);
  });
}

void gemmFp8DequantResidual(int m, int n, int k, const void* x, const void* w, float xScale, const float* wScale,
                            const float* bias, const float* gate, void* residual, int64_t ld, bool bf16Residual,
                            CUstream_st* stream) {
  if (m <= 0) return;
  checkShape("gemmFp8DequantResidual", n, k, ld, bf16Residual ? 8 : 4);
  if (!gemmInt8DequantAligned(x, w, nullptr, wScale, bias, residual, gate))
    throw std::invalid_argument("gemmFp8DequantResidual: every pointer must be 16-byte aligned");
  // Fast accumulation on the schedule pingPong(k) picks, unless FF_CUDA_FP8_ACCUM=promoted: then
  // CUTLASS's promoted accumulation, on ping-pong only (its second accumulator does not fit the
  // cooperative tile's registers; measured at the FFN's fc2, 32760 x 1536 x 8960, it ran 3.1x
  // slower than the INT8 GEMM there on an H100, and 2.6x slower on ping-pong on an H200).
  const std::string accum = envChoice("FF_CUDA_FP8_ACCUM", {"fast", "promoted"});
  using e4m3 = cutlass::float_e4m3_t;
  const char* who = "gemmFp8DequantResidual";
  if (accum == "promoted") {
    residualGemm<PingPong<1>, e4m3>(who, m, n, k, x, w, nullptr, xScale, wScale, bias, gate, residual, ld, bf16Residual,
                                    stream);
    return;
  }
  onSchedule<PingPongFp8Fast, CooperativeFp8Fast>(n, k, [&](auto s) {
    residualGemm<decltype(s), e4m3>(who, m, n, k, x, w, nullptr, xScale, wScale, bias, gate, residual, ld, bf16Residual,
                                    stream);
  });
}

}  // namespace ff::cuda

#endif  // FF_CUDA_HAVE_CUTLASS
