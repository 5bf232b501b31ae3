#include "model/dispatch.h"

#include "core/error.h"
#include "kernels/cpu/gemm.h"

namespace ff {

void linear_fp32(const LinearWeights& w, const float* x, int64_t rows, float* y) {
  GemmArgs g;
  g.M = rows;
  g.N = w.out;
  g.K = w.in;
  g.A = x;
  g.lda = w.in;
  g.B = w.weight;
  g.ldb = w.in;
  g.C = y;
  g.ldc = w.out;
  g.bias = w.bias;
  gemm_nt(g);
}

void linear(const Knobs& knobs, const LinearWeights& w, const float* x, int64_t rows, float* y) {
  switch (knobs.linear) {
    case LinearKind::Fp32: return linear_fp32(w, x, rows, y);
    case LinearKind::Bf16:
    case LinearKind::W8a8: break;
  }
  fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(knobs.linear) + "' kernel is not built in this engine");
}

void prepare_linear(LinearKind kind, LinearWeights& w) {
  switch (kind) {
    case LinearKind::Fp32: return;  // runs on the weights as loaded
    case LinearKind::Bf16:
    case LinearKind::W8a8: break;
  }
  fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(kind) + "' kernel is not built in this engine (" + w.name + ")");
}

void self_attention(const Knobs& knobs, const AttentionArgs& args, const float* proj_l) {
  (void)proj_l;  // only the sla linear branch reads it
  switch (knobs.attention) {
    case AttentionKind::Dense: return attention_dense(args);
    case AttentionKind::Sage:
    case AttentionKind::Sla: break;
  }
  fail(ErrorCode::BadRequest, std::string("attention: '") + attention_name(knobs.attention) + "' kernel is not built in this engine");
}

bool knob_supported(AttentionKind k) { return k == AttentionKind::Dense; }
bool knob_supported(LinearKind k) { return k == LinearKind::Fp32; }
bool tea_cache_supported() { return false; }

void require_supported(const Knobs& k) {
  if (!knob_supported(k.attention))
    fail(ErrorCode::BadRequest, std::string("attention: '") + attention_name(k.attention) + "' kernel is not built in this engine");
  if (!knob_supported(k.linear))
    fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(k.linear) + "' kernel is not built in this engine");
  if (k.tea_cache > 0 && !tea_cache_supported()) fail(ErrorCode::BadRequest, "teaCache: step caching is not built in this engine; use 0");
}

}  // namespace ff
