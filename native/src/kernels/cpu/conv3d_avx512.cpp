// Direct 3D convolution for AVX-512 (conv3d_direct_impl.h): 16-wide vectors, blocks of 8 output
// channels (16 accumulators of the 32 zmm registers), partial vectors stored under a lane mask.
#include <immintrin.h>

#include "kernels/cpu/conv3d_direct_impl.h"

namespace ff {

namespace {

struct Avx512Vec {
  static constexpr int64_t kLanes = 16, kBlock = 8;
  static constexpr bool kUnrollTaps = false;
  using V = __m512;
  using Mask = __mmask16;
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static Mask all() { return Mask(0xFFFF); }
  static Mask first(int64_t n) { return Mask((1u << n) - 1); }
};

}  // namespace

void conv3d_direct_avx512(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv3d_detail::conv3d_direct<Avx512Vec>(s, x, w, bias, y);
}

}  // namespace ff
