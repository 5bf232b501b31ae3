// The model's two kernel dispatch points: every linear layer of a DiT block goes through
// linear(), every DiT self-attention through self_attention(). An accelerated kernel is wired in
// by adding its case here (and marking it supported in knob_supported()).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "model/knobs.h"

namespace ff {

struct LinearWeights {
  std::string name;  // checkpoint key prefix, e.g. "dit.blocks.0.attn1.q"
  int64_t out = 0, in = 0;
  const float* weight = nullptr;        // [out, in]
  const float* bias = nullptr;          // [out] or null
  const int8_t* weight_q = nullptr;     // [out, in] stored pre-quantized, or null
  const float* weight_scale = nullptr;  // [out], with weight_q
  // State a kernel derives once from the weights (quantized or repacked copies), one slot per
  // LinearKind so kinds can alternate between requests; built by prepare_linear() before the
  // first forward that uses that kind.
  std::array<std::shared_ptr<void>, 3> kernel_state;
  std::shared_ptr<void>& state(LinearKind kind) { return kernel_state[static_cast<size_t>(kind)]; }
  const void* state(LinearKind kind) const { return kernel_state[static_cast<size_t>(kind)].get(); }
};

// y: [rows, out] = x: [rows, in] · weightᵀ + bias, computed by the kernel knobs.linear selects.
void linear(const Knobs& knobs, const LinearWeights& w, const float* x, int64_t rows, float* y);
// The fp32 product, also used directly by the layers outside the DiT blocks.
void linear_fp32(const LinearWeights& w, const float* x, int64_t rows, float* y);
// Whether linear_fused runs for these knobs (the w8a8 kind; fp32 and bf16 run layer by layer).
bool linear_fusable(const Knobs& knobs);
// Several w8a8 layers sharing one input, in one pass over row blocks (cpu::linearW8A8Fused):
// y[l] = in W_l^T + b_l where the input rows come from `input(m0, m1, dst)` (or x when input is
// null), and `output(m0, m1)` post-processes each finished block on the same thread.
void linear_fused(const Knobs& knobs, const LinearWeights* const* w, float* const* y, int count, int64_t rows, const float* x,
                  const std::function<void(int64_t, int64_t, float*)>& input, const std::function<void(int64_t, int64_t)>& output);
// Called once per (layer, linear kind) before first use, serialised by the model.
void prepare_linear(LinearKind kind, LinearWeights& w);

// DiT self-attention after RoPE: q, k, v [tokens, heads * head_dim] -> out. proj_l: the block's
// optional SLA linear-branch projection [hd, hd] (null when absent).
void self_attention(const Knobs& knobs, const AttentionArgs& args, const float* proj_l);

// Whether this build runs a knob value (capabilities() lists these; requests naming another value
// are rejected before any work).
bool knob_supported(AttentionKind k);
bool knob_supported(LinearKind k);
bool tea_cache_supported();
// Throws Error(BadRequest) naming the first knob value this build cannot run.
void require_supported(const Knobs& knobs);

}  // namespace ff
