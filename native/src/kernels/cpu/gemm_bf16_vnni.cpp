// AVX-512 BF16 micro-kernel: 12 rows x 32 columns, 24 zmm fp32 accumulators; each vdpbf16ps adds
// two k of one row (a broadcast bf16 pair of x) times 16 columns (pairs of the packed weight).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "io/safetensors.h"
#include "kernels/cpu/gemm_bf16.h"

namespace ff {

namespace {
constexpr int64_t kMr = 12, kNr = kBf16PanelCols, kMcPanels = 8, kNcPanels = 16;
}

void gemm_bf16_vnni(const float* x, int64_t M, const Bf16PackedWeight& w, const float* bias, float* y) {
  const int64_t K = w.K, N = w.N, KP = w.k_pairs, m_panels = (M + kMr - 1) / kMr;
  std::vector<uint32_t> ap(size_t(m_panels * KP * kMr));  // ap[q][kk][r] = bf16 pair of x row q*12+r
  ThreadPool& pool = ThreadPool::global();
  pool.parallel_for(m_panels, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q)
      for (int64_t r = 0; r < kMr; ++r) {
        const int64_t row = q * kMr + r;
        for (int64_t kk = 0; kk < KP; ++kk) {
          uint32_t v = 0;
          if (row < M) {
            v = f32_to_bf16(x[row * K + 2 * kk]);
            if (2 * kk + 1 < K) v |= uint32_t(f32_to_bf16(x[row * K + 2 * kk + 1])) << 16;
          }
          ap[size_t((q * KP + kk) * kMr + r)] = v;
        }
      }
  }, 4);
  const int64_t tiles_m = (m_panels + kMcPanels - 1) / kMcPanels, tiles_n = (w.n_panels + kNcPanels - 1) / kNcPanels;
  pool.parallel_for(tiles_m * tiles_n, [&](int64_t tb, int64_t te) {
    alignas(64) float tile[kMr * kNr];
    for (int64_t t = tb; t < te; ++t) {
      const int64_t q0 = (t / tiles_n) * kMcPanels, p0 = (t % tiles_n) * kNcPanels;
      const int64_t q1 = std::min(m_panels, q0 + kMcPanels), p1 = std::min(w.n_panels, p0 + kNcPanels);
      for (int64_t p = p0; p < p1; ++p) {
        const uint32_t* bp = w.pairs.data() + p * KP * kNr;
        for (int64_t q = q0; q < q1; ++q) {
          const uint32_t* a = ap.data() + q * KP * kMr;
          __m512 acc[kMr][2];
#pragma GCC unroll 12
          for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
          for (int64_t kk = 0; kk < KP; ++kk) {
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + kk * kNr);
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + kk * kNr + 16);
#pragma GCC unroll 12
            for (int r = 0; r < kMr; ++r) {
              const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[kk * kMr + r]));
              acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
              acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
            }
          }
#pragma GCC unroll 12
          for (int r = 0; r < kMr; ++r) {
            _mm512_store_ps(tile + r * kNr, acc[r][0]);
            _mm512_store_ps(tile + r * kNr + 16, acc[r][1]);
          }
          const int64_t row0 = q * kMr, col0 = p * kNr;
          const int64_t nrows = std::min(kMr, M - row0), ncols = std::min(kNr, N - col0);
          for (int64_t i = 0; i < nrows; ++i)
            for (int64_t j = 0; j < ncols; ++j) y[(row0 + i) * N + col0 + j] = tile[i * kNr + j] + (bias ? bias[col0 + j] : 0.f);
        }
      }
    }
  });
}

}  // namespace ff
