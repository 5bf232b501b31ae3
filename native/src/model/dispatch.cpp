#include "model/dispatch.h"

#include "core/error.h"
#include "kernels/cpu/attention_sage.h"
#include "kernels/cpu/attention_sla.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/gemm_int8.h"

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
    case LinearKind::W8a8: {
      const auto* layer = static_cast<const cpu::Int8Linear*>(w.state(LinearKind::W8a8));
      if (!layer) fail(ErrorCode::Internal, "linear: " + w.name + " was not prepared for w8a8");
      return cpu::linearW8A8(*layer, x, rows, y);
    }
    case LinearKind::Bf16: {
      const auto* packed = static_cast<const Bf16PackedWeight*>(w.state(LinearKind::Bf16));
      if (!packed) fail(ErrorCode::Internal, "linear: " + w.name + " was not prepared for bf16");
      return gemm_bf16(x, rows, *packed, w.bias, y);
    }
  }
  fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(knobs.linear) + "' kernel is not built in this engine");
}

bool linear_fusable(const Knobs& knobs) { return knobs.linear == LinearKind::W8a8; }

void linear_fused(const Knobs& knobs, const LinearWeights* const* w, float* const* y, int count, int64_t rows, const float* x,
                  const std::function<void(int64_t, int64_t, float*)>& input, const std::function<void(int64_t, int64_t)>& output) {
  if (!linear_fusable(knobs) || count < 1 || count > 4) fail(ErrorCode::Internal, "linear_fused: needs the w8a8 kind and 1..4 layers");
  const cpu::Int8Linear* layers[4];
  for (int l = 0; l < count; ++l) {
    layers[l] = static_cast<const cpu::Int8Linear*>(w[l]->state(LinearKind::W8a8));
    if (!layers[l]) fail(ErrorCode::Internal, "linear: " + w[l]->name + " was not prepared for w8a8");
  }
  cpu::linearW8A8Fused(layers, y, count, rows, x, input, output);
}

void prepare_linear(LinearKind kind, LinearWeights& w) {
  switch (kind) {
    case LinearKind::Fp32: return;  // runs on the weights as loaded
    case LinearKind::W8a8: {
      // Per-output-channel INT8 weights: the stored <name>.weight_q/.weight_scale, else quantized now.
      // Stored ones are symmetric like the engine's own: -128 would break the AVX2 kernel's sign
      // trick (int8_panel_avx2.h), so it is refused here, naming the tensor.
      if (w.weight_q)
        for (int64_t i = 0; i < w.out * w.in; ++i)
          if (w.weight_q[i] == -128)
            fail(ErrorCode::ModelFormat, "tensor " + w.name + ".weight_q: value -128 at element " + std::to_string(i) +
                                             "; stored W8A8 weights lie in [-127, 127]");
      const Variant v = cpu::bestInt8Variant();
      w.state(LinearKind::W8a8) = std::make_shared<cpu::Int8Linear>(
          w.weight_q ? cpu::int8LinearFromQuantized(w.weight_q, w.weight_scale, w.bias, w.out, w.in, v)
                     : cpu::quantizeLinear(w.weight, w.bias, w.out, w.in, v));
      return;
    }
    case LinearKind::Bf16:
      if (!gemm_bf16_available()) break;
      w.state(LinearKind::Bf16) = std::make_shared<Bf16PackedWeight>(pack_bf16_weight(w.weight, w.out, w.in));
      return;
  }
  fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(kind) + "' kernel is not built in this engine (" + w.name + ")");
}

void self_attention(const Knobs& knobs, const AttentionArgs& args, const float* proj_l) {
  switch (knobs.attention) {
    case AttentionKind::Dense: return attention_dense(args);
    case AttentionKind::Sage: return cpu::sageAttention(args, cpu::bestInt8Variant());
    case AttentionKind::Sla:
      return cpu::slaAttention(args, cpu::SlaOptions{float(knobs.sla_top_k), proj_l}, cpu::bestInt8Variant());
  }
  fail(ErrorCode::BadRequest, std::string("attention: '") + attention_name(knobs.attention) + "' kernel is not built in this engine");
}

bool knob_supported(AttentionKind) { return true; }
bool knob_supported(LinearKind k) { return k != LinearKind::Bf16 || gemm_bf16_available(); }
bool tea_cache_supported() { return true; }

void require_supported(const Knobs& k) {
  if (!knob_supported(k.attention))
    fail(ErrorCode::BadRequest, std::string("attention: '") + attention_name(k.attention) + "' kernel is not built in this engine");
  if (!knob_supported(k.linear))
    fail(ErrorCode::BadRequest, std::string("linear: '") + linear_name(k.linear) + "' kernel is not built in this engine");
  if (k.tea_cache > 0 && !tea_cache_supported()) fail(ErrorCode::BadRequest, "teaCache: step caching is not built in this engine; use 0");
}

}  // namespace ff
