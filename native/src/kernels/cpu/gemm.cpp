#include "kernels/cpu/gemm.h"

#include "core/error.h"
#include "kernels/cpu/gemm_driver.h"

namespace ff {

namespace {

// Portable micro-kernel: the compiler vectorises the inner j loop for the baseline ISA.
struct ScalarMicro {
  static constexpr int MR = 4, NR = 16;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] += a[k * MR + r] * b[k * NR + j];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) c[r * ldc + j] += acc[r][j];
  }
};

// Below this many multiply-adds packing costs more than it saves.
constexpr int64_t kSmallGemm = 16 * 1024;

}  // namespace

void gemm_nt_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      double acc = g.bias ? g.bias[j] : 0.0;
      const float* a = g.A + i * g.lda;
      const float* b = g.B + j * g.ldb;
      for (int64_t k = 0; k < g.K; ++k) acc += double(a[k]) * b[k];
      float* c = g.C + i * g.ldc + j;
      *c = g.accumulate ? *c + float(acc) : float(acc);
    }
}

void gemm_nt_scalar(const GemmArgs& g) { gemm_detail::gemm_packed<ScalarMicro>(g); }

std::vector<Variant> gemm_variants() { return {Variant::Scalar, Variant::Avx2, Variant::Avx512}; }

void gemm_nt_variant(Variant v, const GemmArgs& g) {
  if (variant_score(v) == 0) fail(ErrorCode::Internal, std::string("gemm variant ") + variant_name(v) + " cannot run on this CPU");
  switch (v) {
    case Variant::Avx2: return gemm_nt_avx2(g);
    case Variant::Avx512:
    case Variant::Vnni:
    case Variant::Amx: return gemm_nt_avx512(g);
    case Variant::Scalar: return gemm_nt_scalar(g);
  }
}

void gemm_nt(const GemmArgs& g) {
  if (g.M * g.N * g.K < kSmallGemm) return gemm_nt_reference(g);
  static const Variant best = best_variant(gemm_variants());
  gemm_nt_variant(best, g);
}

}  // namespace ff
