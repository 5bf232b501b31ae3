// The video DiT (dit.safetensors / student.safetensors), docs/MODEL.md "DiT".
#pragma once
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"
#include "io/config.h"
#include "model/dispatch.h"
#include "model/knobs.h"
#include "model/teacache.h"
#include "model/text_encoder.h"
#include "model/weights.h"

namespace ff {

std::vector<ParamSpec> dit_params(const DitConfig& c, const TextConfig& text);

struct DitBlock {
  const float* modulation;  // [6, D]
  LinearWeights q1, k1, v1, o1, q2, k2, v2, o2, fc1, fc2;
  const float *norm_q1, *norm_k1, *proj_l, *norm3_w, *norm3_b, *norm_q2, *norm_k2;
};

// The text side of cross-attention, fixed for a whole generation: per block, k and v of the
// embedded text (k already RMS-normalised).
struct DitText {
  Tensor c;                       // [L, D] = text_embed(ctx)
  std::vector<Tensor> k, v;       // per block [L, D]
  std::vector<uint8_t> mask;      // [L]
};

// Timestep conditioning: e [D] and m [6, D] (before each block's own modulation is added).
struct DitTime {
  std::vector<float> e, m;
};

class Dit {
 public:
  // `w` must be prepared.
  Dit(WeightSet& w, const ModelConfig& c);

  DitText prepare_text(const TextContext& text) const;
  DitTime time_embedding(double t) const;
  // x: [C, T, H/8, W/8] -> tokens [N, D]
  void embed(const float* x, const LatentShape& s, float* tokens) const;
  // tokens: [N, D] updated in place by block i.
  void block(const Knobs& knobs, int i, float* tokens, const LatentShape& s, const DitTime& time, const DitText& text, Arena& arena) const;
  // block() with the w8a8 linears fused with their neighbours (see dit.cpp).
  void block_fused(const Knobs& knobs, int i, float* tokens, const LatentShape& s, const DitTime& time, const DitText& text,
                   Arena& arena) const;
  // tokens: [N, D] -> v: [C, T, H/8, W/8]
  void head(const float* tokens, const LatentShape& s, const DitTime& time, float* v, Arena& arena) const;
  // The whole forward v = DiT(x, t, ctx). With a TeaCache (teaCache > 0, one per CFG pass) the
  // block stack may be replaced by the residual cached at the pass's last full evaluation.
  void forward(const Knobs& knobs, const float* x, const LatentShape& s, double t, const DitText& text, float* v, Arena& arena,
               TeaCache* cache = nullptr) const;

  // Whether block() runs the fused schedule (block_fused) when the knobs allow it: on by
  // default; tests turn it off to compare against the layer-by-layer schedule.
  static void set_fused_blocks(bool on);

  // Runs prepare_linear for every block linear once per kind (thread-safe).
  void prepare_linears(LinearKind kind);
  int layers() const { return int(blocks_.size()); }

  // The tensors a GPU copy of this DiT uploads (model/backend.cpp).
  const DitBlock& block_weights(int i) const { return blocks_[size_t(i)]; }
  const LinearWeights& patch_embed_weights() const { return patch_embed_; }
  const LinearWeights& head_weights() const { return head_proj_; }
  const float* head_modulation() const { return head_modulation_; }

 private:
  const DitConfig& c_;
  const TextConfig& text_;
  WeightSet& w_;
  LinearWeights patch_embed_, text_fc1_, text_fc2_, time_fc1_, time_fc2_, time_proj_, head_proj_;
  const float* head_modulation_;
  std::vector<DitBlock> blocks_;
  std::mutex prepare_mu_;
  std::set<LinearKind> prepared_kinds_;
};

}  // namespace ff
