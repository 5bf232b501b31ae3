// The fast SLA path (attention_sla_impl.h) compiled for AVX-512.
#include "kernels/cpu/attention_sla_impl.h"

namespace ff::cpu {

void slaAttentionAvx512(const AttentionArgs& a, const SlaOptions& options, Variant variant, bool linear) {
  sla_detail::slaAttentionImpl(a, options, variant, linear);
}

std::vector<int32_t> slaSelectBlocksAvx512(const AttentionArgs& a, int64_t head, const float* kMean, int64_t kc) {
  return sla_detail::selectBlocks(a, head, kMean, kc);
}

void addColumnsDoubleAvx512(const float* x, int64_t ld, int64_t rows, int64_t cols, double* sum) {
  sla_detail::addColumnsDouble(x, ld, rows, cols, sum);
}

}  // namespace ff::cpu
