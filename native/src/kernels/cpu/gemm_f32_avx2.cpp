// AVX2 + FMA fp32 micro-kernel: 6 rows x 16 columns, 12 ymm accumulators.
#include <immintrin.h>

#include "kernels/cpu/gemm_driver.h"

namespace ff {

namespace {

struct Avx2Micro {
  static constexpr int MR = 6, NR = 16;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc) {
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        __m256 av = _mm256_broadcast_ss(a + k * MR + r);
        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
      _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][0]));
      _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[r][1]));
    }
  }
};

}  // namespace

void gemm_nt_avx2(const GemmArgs& g) { gemm_detail::gemm_packed<Avx2Micro>(g); }

}  // namespace ff
