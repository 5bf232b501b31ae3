// The fast SLA path (attention_sla_impl.h) compiled for AVX2 + FMA.
#include "kernels/cpu/attention_sla_impl.h"

namespace ff::cpu {

void slaAttentionAvx2(const AttentionArgs& a, const SlaOptions& options, Variant variant, bool linear) {
  sla_detail::slaAttentionImpl(a, options, variant, linear);
}

}  // namespace ff::cpu
