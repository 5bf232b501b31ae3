#include "kernels/cuda/gemm.h"

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

}  // namespace ff::cuda
