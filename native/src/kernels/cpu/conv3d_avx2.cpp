// Direct 3D convolution for AVX2 + FMA (conv3d_direct_impl.h): 8-wide vectors, blocks of 4 output
// channels (8 accumulators; blocks of 6 or 8 channels measured slower on Zen 3), partial vectors
// stored under a lane mask. The tap loop is unrolled for kernel widths 3 and 1.
#include <immintrin.h>

#include "kernels/cpu/conv3d_direct_impl.h"

namespace ff {

namespace {

struct Avx2Vec {
  static constexpr int64_t kLanes = 8, kBlock = 4;
  static constexpr bool kUnrollTaps = true;
  using V = __m256;
  using Mask = __m256i;
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  static Mask all() { return _mm256_set1_epi32(-1); }
  static Mask first(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

}  // namespace

void conv3d_direct_avx2(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv3d_detail::conv3d_direct<Avx2Vec>(s, x, w, bias, y);
}

}  // namespace ff
