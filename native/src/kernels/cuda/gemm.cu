#include "kernels/cuda/gemm.h"

#include <cstdint>
#include <initializer_list>
#include <stdexcept>

#include "kernels/cuda/check.h"

namespace ff::cuda {

// Row-major y [m, n] = x [m, k] . w [n, k]^T is column-major y^T [n, m] = w . x^T: cuBLAS's "TN".
void gemmBf16(cublasContext* h, CUstream_st* stream, int m, int n, int k, const void* x, const void* w, void* y) {
  const float one = 1.0f, zero = 0.0f;
  FF_CUBLAS(cublasSetStream(h, stream));
  FF_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k, &zero, y,
                         CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemmInt8(cublasContext* h, CUstream_st* stream, int m, int n, int k, const int8_t* x, const int8_t* w, int32_t* y) {
  if (k % 4 != 0) throw std::invalid_argument("gemmInt8: k must be a multiple of 4");
  const int32_t one = 1, zero = 0;
  FF_CUBLAS(cublasSetStream(h, stream));
  FF_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, CUDA_R_8I, k, x, CUDA_R_8I, k, &zero, y,
                         CUDA_R_32I, n, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT));
}

bool gemmInt8DequantAligned(const void* x, const void* w, const void* xScale, const void* wScale, const void* bias,
                            const void* y, const void* gate) {
  for (const void* p : {x, w, xScale, wScale, bias, y, gate})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

#ifndef FF_CUDA_HAVE_CUTLASS
// Without CUTLASS (or without sm_90 among the architectures) there is no fused kernel.
bool gemmInt8DequantAvailable() { return false; }
void gemmInt8Dequant(int, int, int, const int8_t*, const int8_t*, const float*, const float*, const float*, bool, void*,
                     int64_t, CUstream_st*) {
  throw std::logic_error("gemmInt8Dequant: this build has no fused W8A8 kernel (configure with FF_CUTLASS_ROOT)");
}
void gemmInt8DequantResidual(int, int, int, const int8_t*, const int8_t*, const float*, const float*, const float*,
                             const float*, void*, int64_t, bool, CUstream_st*) {
  throw std::logic_error("gemmInt8DequantResidual: this build has no fused W8A8 kernel (configure with FF_CUTLASS_ROOT)");
}
void gemmInt8DequantFp8(int, int, int, const int8_t*, const int8_t*, const float*, const float*, const float*, void*,
                        int64_t, CUstream_st*) {
  throw std::logic_error("gemmInt8DequantFp8: this build has no fused W8A8 kernel (configure with FF_CUTLASS_ROOT)");
}
void gemmFp8DequantResidual(int, int, int, const void*, const void*, float, const float*, const float*, const float*,
                            void*, int64_t, bool, CUstream_st*) {
  throw std::logic_error("gemmFp8DequantResidual: this build has no fused W8A8 kernel (configure with FF_CUTLASS_ROOT)");
}
#endif

}  // namespace ff::cuda
