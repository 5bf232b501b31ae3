// AVX-512 fp32 micro-kernel: 12 rows x 32 columns, 24 zmm accumulators (the broadcast of A folds
// into the FMA as an embedded {1to16} operand).
#include <immintrin.h>

#include "kernels/cpu/gemm_driver.h"

namespace ff {

namespace {

struct Avx512Micro {
  static constexpr int MR = 12, NR = 32;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
      _mm_prefetch(reinterpret_cast<const char*>(b + (k + 8) * NR), _MM_HINT_T0);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) {
        __m512 av = _mm512_set1_ps(a[k * MR + r]);
        acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
      }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
      _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]));
      _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]));
    }
  }
};

}  // namespace

void gemm_nt_avx512(const GemmArgs& g) { gemm_detail::gemm_packed<Avx512Micro>(g); }

}  // namespace ff
