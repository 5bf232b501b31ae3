#pragma once
// Sparse-linear attention (attention=sla, self-attention only), exactly as docs/MODEL.md defines
// it: per head, k~ = k - mean(k); query block b picks the top-k key blocks by pooled scores
// mean(q_b) . mean(k~_j); the selected blocks get exact softmax attention (Sage INT8 in the fast
// path), the remaining keys a linear-attention branch with phi = softmax over the head
// dimension, and o = o_sparse + o_linear proj_l^T.
#include <cstdint>
#include <vector>

#include "kernels/cpu/attention.h"
#include "quant.h"

namespace ff::cpu {

struct SlaOptions {
  float topK = 0.1f;              // fraction of key blocks each query block attends exactly
  const float* projL = nullptr;   // [head_dim, head_dim] (attn1.proj_l.weight); null = zero
};

constexpr int64_t kSlaBlock = 64;

// kc = clamp(floor(topK * blocks + 0.5), 1, blocks).
int64_t slaSelectedCount(float topK, int64_t blocks);

// Head `head` of a: the key blocks each query block selects, ascending:
// [qBlocks, kc]; ties in the pooled score go to the lower block index.
std::vector<int32_t> slaSelectBlocks(const AttentionArgs& a, int64_t head, const float* kMean, int64_t kc);

// The fast path: Sage INT8 sparse branch on `variant` plus the fp32 linear branch.
void slaAttention(const AttentionArgs& a, const SlaOptions& options, Variant variant);
// The fp32 oracle (exact softmax over the selected blocks, double accumulation), the function
// train/model.py's sla_attention computes.
void slaAttentionReference(const AttentionArgs& a, const SlaOptions& options);

}  // namespace ff::cpu
