// W8A8 GEMM with the dequantization in its epilogue on Hopper (CUTLASS 3's TMA warp-specialized
// int8 kernel): y (bf16) = act(xScale[m] * (wScale[n] * acc) + bias[n]), acc = xq[m] . wq[n] in
// int32, so the int32 product never reaches memory (gemmInt8 + dequantInt8 write and read it
// back). Built only with CUTLASS's headers (FF_CUTLASS_ROOT, see native/CMakeLists.txt).
#include "kernels/cuda/gemm.h"

#ifdef FF_CUDA_HAVE_CUTLASS

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

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

using TileShape = Shape<_128, _256, _128>;  // M x N x K (bytes of K per stage: 128)
using ClusterShape = Shape<_1, _1, _1>;
constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;

// act(xScale[m] * (wScale[n] * acc) + bias[n]) as bf16.
template <template <class> class Act>
using Dequant = fusion::Sm90EVT<
    fusion::Sm90Compute<Act, cutlass::bfloat16_t, float, kRound>,
    fusion::Sm90EVT<fusion::Sm90Compute<cutlass::homogeneous_multiply_add, float, float, kRound>,
                    fusion::Sm90ColBroadcast<0, TileShape, float, float, Stride<_1, _0, int64_t>>,  // xScale[m]
                    fusion::Sm90EVT<fusion::Sm90Compute<cutlass::multiplies, float, float, kRound>,
                                    fusion::Sm90RowBroadcast<0, TileShape, float, float, Stride<_0, _1, int64_t>>,  // wScale[n]
                                    fusion::Sm90AccFetch>,
                    fusion::Sm90RowBroadcast<0, TileShape, float, float, Stride<_0, _1, int64_t>>>>;  // bias[n]

template <template <class> class Act>
struct FusedGemm {
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, int32_t, float, void, cutlass::layout::RowMajor, 8,
      cutlass::bfloat16_t, cutlass::layout::RowMajor, 8, cutlass::epilogue::TmaWarpSpecializedCooperative,
      Dequant<Act>>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, int8_t, cutlass::layout::RowMajor, 16, int8_t,
      cutlass::layout::ColumnMajor, 16, int32_t, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static void run(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
                  const float* bias, void* y, int64_t ldy, cudaStream_t stream) {
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
    const StrideA sa = make_stride(static_cast<int64_t>(k), _1{}, int64_t{0});
    const StrideB sb = make_stride(static_cast<int64_t>(k), _1{}, int64_t{0});
    const StrideD sd = make_stride(ldy, _1{}, int64_t{0});
    typename Gemm::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {m, n, k, 1},
        {x, sa, w, sb},
        {{// act(...)
          {// xScale * t + bias
           {xScale, 0.0f, {_1{}, _0{}, int64_t{0}}},
           {// wScale * acc
            {wScale, 0.0f, {_0{}, _1{}, int64_t{0}}},
            {},
            {}},
           {bias, 0.0f, {_0{}, _1{}, int64_t{0}}},
           {}},
          {}},
         nullptr,
         sd,
         static_cast<cutlass::bfloat16_t*>(y),
         sd}};
    Gemm gemm;
    if (gemm.can_implement(args) != cutlass::Status::kSuccess)
      throw std::invalid_argument("gemmInt8Dequant: shape " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                                  std::to_string(k) + " (ldy " + std::to_string(ldy) +
                                  ") not supported: k a multiple of 16, n and ldy of 8");
    // The persistent tile scheduler asks for none; should a build ask, it is stream-ordered memory.
    const size_t wsBytes = Gemm::get_workspace_size(args);
    void* ws = nullptr;
    if (wsBytes > 0 && cudaMallocAsync(&ws, wsBytes, stream) != cudaSuccess)
      throw std::runtime_error("gemmInt8Dequant: no workspace of " + std::to_string(wsBytes) + " bytes");
    const cutlass::Status init = gemm.initialize(args, ws, stream);
    const cutlass::Status ran = init == cutlass::Status::kSuccess ? gemm.run(stream) : init;
    if (ws != nullptr) cudaFreeAsync(ws, stream);
    if (init != cutlass::Status::kSuccess) throw std::runtime_error("gemmInt8Dequant: initialize failed");
    if (ran != cutlass::Status::kSuccess) throw std::runtime_error("gemmInt8Dequant: launch failed");
  }
};

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
  // TMA's 16-byte rows: k int8, n and ldy bf16 (the kernel's can_implement says the same, later).
  if (n <= 0 || k <= 0 || k % 16 != 0 || n % 8 != 0 || ldy % 8 != 0 || ldy < n)
    throw std::invalid_argument("gemmInt8Dequant: k (" + std::to_string(k) + ") must be a multiple of 16, n (" +
                                std::to_string(n) + ") and ldy (" + std::to_string(ldy) + ") of 8, ldy >= n");
  if (!gemmInt8DequantAligned(x, w, xScale, wScale, bias, y))
    throw std::invalid_argument("gemmInt8Dequant: every pointer must be 16-byte aligned");
  if (gelu) FusedGemm<cutlass::epilogue::thread::GELU_taylor>::run(m, n, k, x, w, xScale, wScale, bias, y, ldy, stream);
  else FusedGemm<cutlass::epilogue::thread::Identity>::run(m, n, k, x, w, xScale, wScale, bias, y, ldy, stream);
}

}  // namespace ff::cuda

#endif  // FF_CUDA_HAVE_CUTLASS
