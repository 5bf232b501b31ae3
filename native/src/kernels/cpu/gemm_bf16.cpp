#include "kernels/cpu/gemm_bf16.h"

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "io/safetensors.h"

namespace ff {

Bf16PackedWeight pack_bf16_weight(const float* w, int64_t N, int64_t K) {
  Bf16PackedWeight p;
  p.N = N;
  p.K = K;
  p.k_pairs = (K + 1) / 2;
  p.n_panels = (N + kBf16PanelCols - 1) / kBf16PanelCols;
  p.pairs.assign(size_t(p.n_panels * p.k_pairs * kBf16PanelCols), 0u);
  ThreadPool::global().parallel_for(p.n_panels, [&](int64_t b, int64_t e) {
    for (int64_t panel = b; panel < e; ++panel)
      for (int64_t j = 0; j < kBf16PanelCols; ++j) {
        const int64_t n = panel * kBf16PanelCols + j;
        if (n >= N) continue;
        for (int64_t kk = 0; kk < p.k_pairs; ++kk) {
          uint32_t lo = f32_to_bf16(w[n * K + 2 * kk]);
          uint32_t hi = 2 * kk + 1 < K ? f32_to_bf16(w[n * K + 2 * kk + 1]) : 0u;
          p.pairs[size_t((panel * p.k_pairs + kk) * kBf16PanelCols + j)] = lo | hi << 16;
        }
      }
  });
  return p;
}

bool gemm_bf16_available() { return variant_score(Variant::Vnni) > 0; }

void gemm_bf16(const float* x, int64_t M, const Bf16PackedWeight& w, const float* bias, float* y) {
  if (!gemm_bf16_available()) fail(ErrorCode::BadRequest, "linear: 'bf16' needs AVX-512 BF16, which this CPU lacks");
  gemm_bf16_vnni(x, M, w, bias, y);
}

void gemm_bf16_reference(const float* x, int64_t M, const float* w, int64_t N, int64_t K, const float* bias, float* y) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += double(bf16_to_f32(f32_to_bf16(x[i * K + k]))) * bf16_to_f32(f32_to_bf16(w[j * K + k]));
      y[i * N + j] = float(acc);
    }
}

}  // namespace ff
