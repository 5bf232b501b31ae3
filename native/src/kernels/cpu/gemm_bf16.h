// bf16 linear layers: weights rounded to bf16 once and packed, activations rounded to bf16 as they
// are packed, products accumulated in fp32 by AVX-512 BF16 (vdpbf16ps, two k per instruction).
//   y[M, N] = bf16(x)[M, K] · bf16(W)ᵀ + bias
#pragma once
#include <cstdint>
#include <vector>

namespace ff {

// W [N, K] in panels of 32 output columns; each panel is [ceil(K/2)][32] pairs of bf16 (low half
// the even k), zero-padded in both directions.
struct Bf16PackedWeight {
  int64_t N = 0, K = 0, k_pairs = 0, n_panels = 0;
  std::vector<uint32_t> pairs;
};
constexpr int64_t kBf16PanelCols = 32;

Bf16PackedWeight pack_bf16_weight(const float* w, int64_t N, int64_t K);
// Whether this CPU runs the bf16 kernel (AVX-512 BF16, i.e. the vnni variant scores above zero).
bool gemm_bf16_available();
// x: [M, K] row-major (row stride K) -> y: [M, N]; bias [N] or null.
void gemm_bf16(const float* x, int64_t M, const Bf16PackedWeight& w, const float* bias, float* y);
// Oracle: both operands rounded to bf16, double accumulation.
void gemm_bf16_reference(const float* x, int64_t M, const float* w, int64_t N, int64_t K, const float* bias, float* y);

void gemm_bf16_vnni(const float* x, int64_t M, const Bf16PackedWeight& w, const float* bias, float* y);

}  // namespace ff
