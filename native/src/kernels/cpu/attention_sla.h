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

// The linear branch's two [4, 64] x [64, 64] products (v proj_l^T and phi(q) G_R) on fp16 FMAs
// (attention_sla_fp16.cpp): where the CPU has AVX512-FP16 and the Vnni variant, unless
// FRAMEFLEET_CPU_SLA_LINEAR=fp32 or setSlaLinearFp16(false) (tests compare the two).
bool slaLinearFp16Enabled();
bool setSlaLinearFp16(bool on);  // returns the previous setting
// out[j * oj + d] = sum_i x[j * xj + i] rows[i][d] for j < 4, d < 64, i < 64, from the rows
// packed in pairs by packVFp16(rows, 64, 64, 64, 64, 64, packed) (attention_sage.h; maxRows is
// the max |value| it returns). fp16 products and per-lane fp16 sums of 32 products, fp32 at
// the end. Returns false, writing nothing, when 32 max|x| maxRows exceeds 32768 (a partial sum
// could leave fp16's range); the caller then runs the fp32 product.
bool slaCombine4x64Fp16(const float* x, int64_t xj, const uint16_t* packed, float maxRows, float* out, int64_t oj);

// The fast path: Sage INT8 sparse branch on `variant` plus the linear branch (fp32, or the two
// products above on fp16 FMAs where slaLinearFp16Enabled()).
void slaAttention(const AttentionArgs& a, const SlaOptions& options, Variant variant);
// The fp32 oracle (exact softmax over the selected blocks, double accumulation), the function
// train/model.py's sla_attention computes.
void slaAttentionReference(const AttentionArgs& a, const SlaOptions& options);

}  // namespace ff::cpu
