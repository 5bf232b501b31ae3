// fp32 GEMM, the one matrix product of the engine (linear layers, conv3d via im2col):
//   C[M, N] (row stride ldc) = A[M, K] (lda) · B[N, K]ᵀ (ldb) + bias[N]
// B is [N, K] row-major, exactly a linear layer's weight [out, in]. With accumulate, the product
// (and bias) are added to C instead of overwriting it.
#pragma once
#include <cstdint>
#include <vector>

#include "core/cpu_features.h"

namespace ff {

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  const float* B = nullptr;
  int64_t ldb = 0;
  float* C = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // [N] or null
  bool accumulate = false;
};

// The best variant for this CPU, all cores.
void gemm_nt(const GemmArgs& args);
// Naive triple loop with double accumulation: the test oracle.
void gemm_nt_reference(const GemmArgs& args);
// A specific variant (tests and bench); the variant must score above zero.
void gemm_nt_variant(Variant v, const GemmArgs& args);
// Variants compiled into this build.
std::vector<Variant> gemm_variants();

// Variant entry points, defined in gemm_f32*.cpp.
void gemm_nt_scalar(const GemmArgs& args);
void gemm_nt_avx2(const GemmArgs& args);
void gemm_nt_avx512(const GemmArgs& args);

}  // namespace ff
