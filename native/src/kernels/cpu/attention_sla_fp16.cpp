// SLA's linear branch on fp16 FMAs where the CPU has AVX512-FP16 (attention_sla.h): the
// [4, 64] x [64, 64] products of the value projection (v proj_l^T) and of the numerators
// (phi(q) G_R) as Sage's fp16 P.V runs them (attention_sage_fp16.cpp): the right-hand rows are
// packed in pairs (packVFp16's layout), one 32-bit broadcast of two neighbouring left-hand values
// feeds four vfmadd231ph, each lane sums 32 products in fp16, and the two lanes of a column are
// added in fp32 at the end. Twice the multiply-adds per instruction of fp32 FMAs.
#include <immintrin.h>

#include <atomic>

#include "attention_sla.h"
#include "quant.h"
#include "core/cpu_features.h"
#include "fp16_pairs.h"

namespace ff::cpu {

namespace {

std::atomic<int>& slaLinearFp16Flag() {
  static std::atomic<int> on{fp16SwitchFromEnv("FRAMEFLEET_CPU_SLA_LINEAR")};
  return on;
}

}  // namespace

bool slaLinearFp16Enabled() {
  static const bool runs = variant_score(Variant::Vnni) > 0 && cpu_features().avx512_fp16;
  return runs && slaLinearFp16Flag().load(std::memory_order_relaxed) != 0;
}

bool setSlaLinearFp16(bool on) { return slaLinearFp16Flag().exchange(on ? 1 : 0) != 0; }

bool slaCombine4x64Fp16(const float* x, int64_t xj, const uint16_t* packed, float maxRows, float* out, int64_t oj) {
  // The four left-hand rows in fp16, and the bound on a lane's partial sum: 32 products of at
  // most max|x| max|rows| each must stay within half of fp16's 65504 (NaN fails the test too).
  alignas(64) uint16_t xh[4][64];
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  for (int j = 0; j < 4; ++j)
    for (int c = 0; c < 64; c += 16) {
      const __m512 v = _mm512_loadu_ps(x + j * xj + c);
      vmax = _mm512_max_ps(vmax, _mm512_and_ps(v, signMask));
      _mm256_store_si256(reinterpret_cast<__m256i*>(&xh[j][c]), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  if (!(32.0f * _mm512_reduce_max_ps(vmax) * maxRows <= 32768.0f)) return false;
  __m512h acc[4][4];
  fp16PairBlock4x4(xh[0], xh[1], xh[2], xh[3], packed, 128, 32, acc);
  for (int j = 0; j < 4; ++j)
    for (int g = 0; g < 4; ++g) {
      __m512 lo, hi;
      pairLanesToFp32(acc[j][g], lo, hi);
      _mm512_storeu_ps(out + j * oj + 16 * g, addPairLanes(lo, hi));
    }
  return true;
}

}  // namespace ff::cpu
