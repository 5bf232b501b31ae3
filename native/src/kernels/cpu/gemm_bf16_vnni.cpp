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
    std::vector<uint16_t> row_bf16(size_t(2 * KP + 32));
    for (int64_t q = b; q < e; ++q)
      for (int64_t r = 0; r < kMr; ++r) {
        const int64_t row = q * kMr + r;
        std::fill(row_bf16.begin(), row_bf16.end(), uint16_t(0));
        if (row < M) {
          // A row rounded to bf16 (round to nearest even, as f32_to_bf16): 32 values per step.
          const float* src = x + row * K;
          int64_t k = 0;
          for (; k + 32 <= K; k += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
            _mm512_storeu_si512(row_bf16.data() + k, (__m512i)v);
          }
          for (; k < K; ++k) row_bf16[size_t(k)] = f32_to_bf16(src[k]);
        }
        uint32_t* dst = ap.data() + q * KP * kMr + r;
        for (int64_t kk = 0; kk < KP; ++kk) dst[kk * kMr] = uint32_t(row_bf16[size_t(2 * kk)]) | uint32_t(row_bf16[size_t(2 * kk + 1)]) << 16;
      }
  }, 4);
  // K is swept in slices of kKcPairs so a B slice (kKcPairs x 32 pairs, 16 KiB) stays in L1 while
  // the A panels of the tile stream past it; partial sums wait in a per-tile buffer.
  constexpr int64_t kKcPairs = 128;
  const int64_t tiles_m = (m_panels + kMcPanels - 1) / kMcPanels, tiles_n = (w.n_panels + kNcPanels - 1) / kNcPanels;
  pool.parallel_for(tiles_m * tiles_n, [&](int64_t tb, int64_t te) {
    AlignedBuffer partial = aligned_floats(size_t(kMcPanels * kMr * kNr));
    for (int64_t t = tb; t < te; ++t) {
      const int64_t q0 = (t / tiles_n) * kMcPanels, p0 = (t % tiles_n) * kNcPanels;
      const int64_t q1 = std::min(m_panels, q0 + kMcPanels), p1 = std::min(w.n_panels, p0 + kNcPanels);
      for (int64_t p = p0; p < p1; ++p) {
        for (int64_t k0 = 0; k0 < KP; k0 += kKcPairs) {
          const int64_t k1 = std::min(KP, k0 + kKcPairs);
          const uint32_t* bp = w.pairs.data() + p * KP * kNr;
          for (int64_t q = q0; q < q1; ++q) {
            const uint32_t* a = ap.data() + q * KP * kMr;
            float* tile = partial.get() + (q - q0) * kMr * kNr;
            __m512 acc[kMr][2];
#pragma GCC unroll 12
            for (int r = 0; r < kMr; ++r) {
              acc[r][0] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(tile + r * kNr);
              acc[r][1] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(tile + r * kNr + 16);
            }
            for (int64_t kk = k0; kk < k1; ++kk) {
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
          }
        }
        for (int64_t q = q0; q < q1; ++q) {
          const float* tile = partial.get() + (q - q0) * kMr * kNr;
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
