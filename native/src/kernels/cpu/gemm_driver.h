// The blocked GEMM driver shared by every fp32 variant; each variant file instantiates it with its
// micro-kernel. Both operands are packed once (A into MR-row panels, B into NR-column panels,
// zero-padded), then threads take (MC x NC) tiles of C and sweep K in KC slices, so a B slice
// (KC x NR) stays in L1 while the micro-kernel walks the A panels of the tile.
#pragma once
#include <algorithm>
#include <cstring>

#include "core/arena.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/gemm.h"

// Internal linkage on purpose: each variant file compiles this code for its own instruction set,
// and a shared inline definition would let the linker pick one ISA's copy for all of them.
namespace ff::gemm_detail {
namespace {

constexpr int64_t kKc = 256;

inline void init_c(const GemmArgs& g) {
  ThreadPool::global().parallel_for(g.M, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* c = g.C + i * g.ldc;
      if (!g.accumulate) {
        if (g.bias) std::memcpy(c, g.bias, sizeof(float) * g.N);
        else std::memset(c, 0, sizeof(float) * g.N);
      } else if (g.bias) {
        for (int64_t j = 0; j < g.N; ++j) c[j] += g.bias[j];
      }
    }
  }, 16);
}

// Micro must provide: static constexpr int MR, NR; static void run(int64_t kc, const float* a,
// const float* b, float* c, int64_t ldc) computing c[MR x NR] += a-panel · b-panel over kc, where
// a is kc x MR (k-major) and b is kc x NR.
template <class Micro>
void gemm_packed(const GemmArgs& g) {
  constexpr int MR = Micro::MR, NR = Micro::NR;
  init_c(g);
  if (g.K == 0 || g.M == 0 || g.N == 0) return;
  const int64_t m_panels = (g.M + MR - 1) / MR, n_panels = (g.N + NR - 1) / NR;
  AlignedBuffer ap = aligned_floats(size_t(m_panels) * MR * g.K);
  AlignedBuffer bp = aligned_floats(size_t(n_panels) * NR * g.K);
  ThreadPool& pool = ThreadPool::global();
  // A panel q: ap[q][k][r] = A[q*MR + r][k]
  pool.parallel_for(m_panels, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) {
      float* dst = ap.get() + q * MR * g.K;
      for (int r = 0; r < MR; ++r) {
        int64_t row = q * MR + r;
        if (row < g.M) {
          const float* src = g.A + row * g.lda;
          for (int64_t k = 0; k < g.K; ++k) dst[k * MR + r] = src[k];
        } else {
          for (int64_t k = 0; k < g.K; ++k) dst[k * MR + r] = 0.f;
        }
      }
    }
  }, 4);
  // B panel p: bp[p][k][j] = B[p*NR + j][k]
  pool.parallel_for(n_panels, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      float* dst = bp.get() + p * NR * g.K;
      for (int j = 0; j < NR; ++j) {
        int64_t col = p * NR + j;
        if (col < g.N) {
          const float* src = g.B + col * g.ldb;
          for (int64_t k = 0; k < g.K; ++k) dst[k * NR + j] = src[k];
        } else {
          for (int64_t k = 0; k < g.K; ++k) dst[k * NR + j] = 0.f;
        }
      }
    }
  }, 4);
  constexpr int64_t kMcPanels = 8, kNcPanels = 16;
  const int64_t tiles_m = (m_panels + kMcPanels - 1) / kMcPanels, tiles_n = (n_panels + kNcPanels - 1) / kNcPanels;
  pool.parallel_for(tiles_m * tiles_n, [&](int64_t tb, int64_t te) {
    alignas(64) float edge[MR * NR];
    for (int64_t t = tb; t < te; ++t) {
      int64_t q0 = (t / tiles_n) * kMcPanels, p0 = (t % tiles_n) * kNcPanels;
      int64_t q1 = std::min(m_panels, q0 + kMcPanels), p1 = std::min(n_panels, p0 + kNcPanels);
      for (int64_t k0 = 0; k0 < g.K; k0 += kKc) {
        int64_t kc = std::min(kKc, g.K - k0);
        for (int64_t p = p0; p < p1; ++p) {
          const float* bpanel = bp.get() + p * NR * g.K + k0 * NR;
          int64_t col = p * NR, ncols = std::min<int64_t>(NR, g.N - col);
          for (int64_t q = q0; q < q1; ++q) {
            const float* apanel = ap.get() + q * MR * g.K + k0 * MR;
            int64_t row = q * MR, nrows = std::min<int64_t>(MR, g.M - row);
            float* c = g.C + row * g.ldc + col;
            if (nrows == MR && ncols == NR) {
              Micro::run(kc, apanel, bpanel, c, g.ldc);
            } else {
              std::memset(edge, 0, sizeof(edge));
              Micro::run(kc, apanel, bpanel, edge, NR);
              for (int64_t i = 0; i < nrows; ++i)
                for (int64_t j = 0; j < ncols; ++j) c[i * g.ldc + j] += edge[i * NR + j];
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace ff::gemm_detail
