// Multi-head attention over row-major token matrices. Head h of token n is the head_dim floats
// at x + n * stride + h * head_dim. out = softmax(q kᵀ * scale, keys masked) v per head.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace ff {

struct AttentionArgs {
  int64_t q_len = 0, kv_len = 0, heads = 0, head_dim = 0;
  const float* q = nullptr;
  int64_t q_stride = 0;
  const float* k = nullptr;
  int64_t k_stride = 0;
  const float* v = nullptr;
  int64_t v_stride = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
  const uint8_t* key_mask = nullptr;  // [kv_len], nonzero = attend; null = all keys
  float scale = 1.0f;
};

// Dense attention with an online (single-pass, running max) softmax over key blocks, parallel over
// (head, query block). A query whose keys are all masked gets zeros.
void attention_dense(const AttentionArgs& a);
void attention_dense_variant(Variant v, const AttentionArgs& a);
// Two-pass softmax in double precision: the oracle.
void attention_reference(const AttentionArgs& a);

void attention_dense_scalar(const AttentionArgs& a);
void attention_dense_avx2(const AttentionArgs& a);
void attention_dense_avx512(const AttentionArgs& a);

}  // namespace ff
