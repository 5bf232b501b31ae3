// SLA's linear branch on fp16 FMAs where the CPU has AVX512-FP16 (attention_sla.h): the
// [4, 64] x [64, 64] products of the value projection (v proj_l^T) and of the numerators
// (phi(q) G_R) as Sage's fp16 P.V runs them (attention_sage_fp16.cpp): the right-hand rows are
// packed in pairs (slaPackPairsFp16), one 32-bit broadcast of two neighbouring left-hand values
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

float slaPackPairsFp16(const float* rows, uint16_t* dst) {
  alignas(64) static constexpr int16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                          8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  for (int64_t i = 0; i < 64; i += 2)
    for (int64_t c = 0; c < 64; c += 16) {
      const __m512 x0 = _mm512_loadu_ps(rows + i * 64 + c), x1 = _mm512_loadu_ps(rows + (i + 1) * 64 + c);
      vmax = _mm512_max_ps(vmax, _mm512_max_ps(_mm512_and_ps(x0, signMask), _mm512_and_ps(x1, signMask)));
      const __m512i both = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm512_cvtps_ph(x0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
          _mm512_cvtps_ph(x1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 1);
      _mm512_storeu_si512(dst + i * 64 + 2 * c, _mm512_permutexvar_epi16(interleave, both));
    }
  return _mm512_reduce_max_ps(vmax);
}

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
  // Column 16 g + t = lane 2t + lane 2t + 1 of group g, in fp32.
  alignas(64) static constexpr int32_t kEven[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  alignas(64) static constexpr int32_t kOdd[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const __m512i even = _mm512_load_si512(kEven), odd = _mm512_load_si512(kOdd);
  for (int j = 0; j < 4; ++j)
    for (int g = 0; g < 4; ++g) {
      const __m512i bits = _mm512_castph_si512(acc[j][g]);
      const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(bits)), hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(bits, 1));
      _mm512_storeu_ps(out + j * oj + 16 * g,
                       _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi)));
    }
  return true;
}

}  // namespace ff::cpu
