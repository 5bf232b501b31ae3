#include "model/text_encoder.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "model/dispatch.h"

namespace ff {

namespace {
constexpr float kTextEps = 1e-5f;

std::string block(int i) { return "text.blocks." + std::to_string(i); }

LinearWeights text_linear(const WeightSet& w, const std::string& name, int64_t out, int64_t in) {
  LinearWeights l;
  l.name = name;
  l.out = out;
  l.in = in;
  l.weight = w.f32(name + ".weight");
  l.bias = w.f32(name + ".bias");
  return l;
}
}  // namespace

std::vector<ParamSpec> text_encoder_params(const TextConfig& c) {
  const int64_t D = c.dim, F = c.ffn_dim;
  std::vector<ParamSpec> p{{"text.embed.weight", {c.vocab_size, D}}, {"text.pos.weight", {c.max_tokens, D}},
                           {"text.norm.weight", {D}}, {"text.norm.bias", {D}}};
  for (int i = 0; i < c.layers; ++i) {
    std::string b = block(i);
    for (const char* n : {".norm1", ".norm2"}) {
      p.push_back({b + n + ".weight", {D}});
      p.push_back({b + n + ".bias", {D}});
    }
    p.push_back({b + ".attn.qkv.weight", {3 * D, D}, false, true});
    p.push_back({b + ".attn.qkv.bias", {3 * D}});
    p.push_back({b + ".attn.out.weight", {D, D}, false, true});
    p.push_back({b + ".attn.out.bias", {D}});
    p.push_back({b + ".mlp.fc1.weight", {F, D}, false, true});
    p.push_back({b + ".mlp.fc1.bias", {F}});
    p.push_back({b + ".mlp.fc2.weight", {D, F}, false, true});
    p.push_back({b + ".mlp.fc2.bias", {D}});
  }
  return p;
}

TextContext encode_text(const WeightSet& w, const TextConfig& c, const std::vector<int32_t>& ids) {
  const int64_t L = c.max_tokens, D = c.dim, F = c.ffn_dim, H = c.heads, hd = D / H;
  if (int64_t(ids.size()) != L) fail(ErrorCode::Internal, "encode_text: expected " + std::to_string(L) + " ids");
  TextContext out;
  out.mask.resize(L);
  Tensor x({L, D}), h({L, D}), qkv({L, 3 * D}), att({L, D}), ff({L, F});
  const float* embed = w.f32("text.embed.weight");
  const float* pos = w.f32("text.pos.weight");
  for (int64_t i = 0; i < L; ++i) {  // x: [L, D] = embed[ids] + pos
    int32_t id = ids[i];
    if (id < 0 || id >= c.vocab_size) fail(ErrorCode::Internal, "token id out of range");
    out.mask[i] = id != 0;
    for (int64_t d = 0; d < D; ++d) x.data()[i * D + d] = embed[id * D + d] + pos[i * D + d];
  }
  for (int i = 0; i < c.layers; ++i) {
    std::string b = block(i);
    layer_norm(x.data(), h.data(), L, D, w.f32(b + ".norm1.weight"), w.f32(b + ".norm1.bias"), kTextEps);
    linear_fp32(text_linear(w, b + ".attn.qkv", 3 * D, D), h.data(), L, qkv.data());  // [L, 3D] = q | k | v
    AttentionArgs a{L, L, H, hd, qkv.data(), 3 * D, qkv.data() + D, 3 * D, qkv.data() + 2 * D, 3 * D, att.data(), D,
                    out.mask.data(), 1.0f / std::sqrt(float(hd))};
    attention_dense(a);
    linear_fp32(text_linear(w, b + ".attn.out", D, D), att.data(), L, h.data());
    add_gated(x.data(), h.data(), L, D, nullptr);
    layer_norm(x.data(), h.data(), L, D, w.f32(b + ".norm2.weight"), w.f32(b + ".norm2.bias"), kTextEps);
    linear_fp32(text_linear(w, b + ".mlp.fc1", F, D), h.data(), L, ff.data());  // [L, F]
    gelu_inplace(ff.data(), L * F);
    linear_fp32(text_linear(w, b + ".mlp.fc2", D, F), ff.data(), L, h.data());
    add_gated(x.data(), h.data(), L, D, nullptr);
  }
  out.ctx = Tensor({L, D});
  layer_norm(x.data(), out.ctx.data(), L, D, w.f32("text.norm.weight"), w.f32("text.norm.bias"), kTextEps);
  return out;
}

}  // namespace ff
