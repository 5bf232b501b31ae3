#include "model/dit.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/threadpool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "model/profile.h"

namespace ff {

namespace {

std::string block_name(int i) { return "dit.blocks." + std::to_string(i); }

void add_linear(std::vector<ParamSpec>& p, const std::string& name, int64_t out, int64_t in) {
  p.push_back({name + ".weight", {out, in}, false, true});
  p.push_back({name + ".bias", {out}});
}

LinearWeights load_linear(const WeightSet& w, const std::string& name, int64_t out, int64_t in) {
  LinearWeights l;
  l.name = name;
  l.out = out;
  l.in = in;
  l.weight = w.f32(name + ".weight");
  l.bias = w.f32(name + ".bias");
  if (const TensorInfo* q = w.info(name + ".weight_q")) {
    l.weight_q = reinterpret_cast<const int8_t*>(q->data);
    l.weight_scale = w.f32(name + ".weight_scale");
  }
  return l;
}

}  // namespace

std::vector<ParamSpec> dit_params(const DitConfig& c, const TextConfig& text) {
  const int64_t D = c.dim, F = c.ffn_dim, P = c.patch_numel(), hd = c.head_dim();
  std::vector<ParamSpec> p;
  add_linear(p, "dit.patch_embed", D, P);
  add_linear(p, "dit.text_embed.fc1", D, text.dim);
  add_linear(p, "dit.text_embed.fc2", D, D);
  add_linear(p, "dit.time_embed.fc1", D, c.freq_dim);
  add_linear(p, "dit.time_embed.fc2", D, D);
  add_linear(p, "dit.time_proj", 6 * D, D);
  for (int i = 0; i < c.layers; ++i) {
    std::string b = block_name(i);
    p.push_back({b + ".modulation", {6, D}});
    for (const char* a : {".attn1", ".attn2"}) {
      for (const char* n : {".q", ".k", ".v", ".o"}) add_linear(p, b + a + n, D, D);
      p.push_back({b + a + ".norm_q.weight", {D}});
      p.push_back({b + a + ".norm_k.weight", {D}});
    }
    p.push_back({b + ".attn1.proj_l.weight", {hd, hd}, true});
    p.push_back({b + ".norm3.weight", {D}});
    p.push_back({b + ".norm3.bias", {D}});
    add_linear(p, b + ".ffn.fc1", F, D);
    add_linear(p, b + ".ffn.fc2", D, F);
  }
  p.push_back({"dit.head.modulation", {2, D}});
  add_linear(p, "dit.head.proj", P, D);
  return p;
}

Dit::Dit(WeightSet& w, const ModelConfig& c) : c_(c.dit), text_(c.text), w_(w) {
  const int64_t D = c_.dim, F = c_.ffn_dim, P = c_.patch_numel();
  patch_embed_ = load_linear(w, "dit.patch_embed", D, P);
  text_fc1_ = load_linear(w, "dit.text_embed.fc1", D, text_.dim);
  text_fc2_ = load_linear(w, "dit.text_embed.fc2", D, D);
  time_fc1_ = load_linear(w, "dit.time_embed.fc1", D, c_.freq_dim);
  time_fc2_ = load_linear(w, "dit.time_embed.fc2", D, D);
  time_proj_ = load_linear(w, "dit.time_proj", 6 * D, D);
  head_proj_ = load_linear(w, "dit.head.proj", P, D);
  head_modulation_ = w.f32("dit.head.modulation");
  for (int i = 0; i < c_.layers; ++i) {
    std::string b = block_name(i);
    DitBlock k;
    k.modulation = w.f32(b + ".modulation");
    k.q1 = load_linear(w, b + ".attn1.q", D, D);
    k.k1 = load_linear(w, b + ".attn1.k", D, D);
    k.v1 = load_linear(w, b + ".attn1.v", D, D);
    k.o1 = load_linear(w, b + ".attn1.o", D, D);
    k.q2 = load_linear(w, b + ".attn2.q", D, D);
    k.k2 = load_linear(w, b + ".attn2.k", D, D);
    k.v2 = load_linear(w, b + ".attn2.v", D, D);
    k.o2 = load_linear(w, b + ".attn2.o", D, D);
    k.fc1 = load_linear(w, b + ".ffn.fc1", F, D);
    k.fc2 = load_linear(w, b + ".ffn.fc2", D, F);
    k.norm_q1 = w.f32(b + ".attn1.norm_q.weight");
    k.norm_k1 = w.f32(b + ".attn1.norm_k.weight");
    k.proj_l = w.f32_or_null(b + ".attn1.proj_l.weight");
    k.norm3_w = w.f32(b + ".norm3.weight");
    k.norm3_b = w.f32(b + ".norm3.bias");
    k.norm_q2 = w.f32(b + ".attn2.norm_q.weight");
    k.norm_k2 = w.f32(b + ".attn2.norm_k.weight");
    blocks_.push_back(std::move(k));
  }
}

void Dit::prepare_linears(LinearKind kind) {
  std::lock_guard<std::mutex> lock(prepare_mu_);
  if (prepared_kinds_.count(kind)) return;
  for (DitBlock& b : blocks_)
    for (LinearWeights* l : {&b.q1, &b.k1, &b.v1, &b.o1, &b.q2, &b.k2, &b.v2, &b.o2, &b.fc1, &b.fc2}) prepare_linear(kind, *l);
  prepared_kinds_.insert(kind);
}

DitText Dit::prepare_text(const TextContext& text) const {
  const int64_t L = text.ctx.dim(0), D = c_.dim;
  DitText out;
  out.mask = text.mask;
  Tensor h({L, D});
  out.c = Tensor({L, D});
  linear_fp32(text_fc1_, text.ctx.data(), L, h.data());  // [L, Dt] -> [L, D]
  gelu_inplace(h.data(), L * D);
  linear_fp32(text_fc2_, h.data(), L, out.c.data());
  for (const DitBlock& b : blocks_) {
    Tensor k({L, D}), v({L, D});
    linear_fp32(b.k2, out.c.data(), L, k.data());
    rms_norm(k.data(), k.data(), L, D, b.norm_k2, float(c_.eps));
    linear_fp32(b.v2, out.c.data(), L, v.data());
    out.k.push_back(std::move(k));
    out.v.push_back(std::move(v));
  }
  return out;
}

DitTime Dit::time_embedding(double t) const {
  const int64_t D = c_.dim, half = c_.freq_dim / 2;
  std::vector<float> freq(c_.freq_dim), h(D);
  const double s = 1000.0 * t;
  for (int64_t j = 0; j < half; ++j) {  // sinusoid(1000 t): [cos(s f_j)] ++ [sin(s f_j)]
    double f = std::pow(10000.0, -double(j) / double(half));
    freq[j] = float(std::cos(s * f));
    freq[half + j] = float(std::sin(s * f));
  }
  DitTime out;
  out.e.resize(D);
  out.m.resize(6 * D);
  linear_fp32(time_fc1_, freq.data(), 1, h.data());
  silu_inplace(h.data(), D);
  linear_fp32(time_fc2_, h.data(), 1, out.e.data());  // e: [D]
  std::vector<float> se = out.e;
  silu_inplace(se.data(), D);
  linear_fp32(time_proj_, se.data(), 1, out.m.data());  // m: [6D]
  return out;
}

void Dit::embed(const float* x, const LatentShape& s, float* tokens) const {
  const int64_t pt = c_.patch[0], ph = c_.patch[1], pw = c_.patch[2], P = c_.patch_numel(), N = s.tokens();
  Tensor patches({N, P});
  // patchify: x [C, T, H, W] -> [N, C*pt*ph*pw], tokens ordered (frame, row, col), patch (c, pt, ph, pw)
  for (int64_t n = 0; n < N; ++n) {
    int64_t gf = n / (s.grid_h * s.grid_w), gr = (n / s.grid_w) % s.grid_h, gc = n % s.grid_w;
    float* dst = patches.data() + n * P;
    for (int64_t ch = 0; ch < s.channels; ++ch)
      for (int64_t a = 0; a < pt; ++a)
        for (int64_t b = 0; b < ph; ++b)
          for (int64_t d = 0; d < pw; ++d)
            *dst++ = x[((ch * s.frames + gf * pt + a) * s.height + gr * ph + b) * s.width + gc * pw + d];
  }
  linear_fp32(patch_embed_, patches.data(), N, tokens);
}

namespace {
bool g_fused_blocks = true;

// A block's modulation (s1, sc1, g1, s2, sc2, g2 = m + the block's modulation) and its [N, D]
// scratch rows, from the arena.
struct BlockScratch {
  const float *s1, *sc1, *g1, *s2, *sc2, *g2;
  float *h, *q, *k, *v, *o;
};

BlockScratch block_scratch(const DitBlock& b, int64_t N, int64_t D, const DitTime& time, Arena& arena) {
  float* mod = arena.alloc(6 * D);
  for (int64_t j = 0; j < 6 * D; ++j) mod[j] = time.m[j] + b.modulation[j];
  BlockScratch r{mod, mod + D, mod + 2 * D, mod + 3 * D, mod + 4 * D, mod + 5 * D, nullptr, nullptr, nullptr, nullptr, nullptr};
  for (float** p : {&r.h, &r.q, &r.k, &r.v, &r.o}) *p = arena.alloc(N * D);
  return r;
}
}  // namespace

void Dit::set_fused_blocks(bool on) { g_fused_blocks = on; }

// The same block as block() with the w8a8 linears fused with their neighbours (linear_fused):
// each pass over row blocks makes the input rows (norm and modulation), quantizes them once for
// every linear that reads them, and post-processes the outputs while they are in cache (q/k
// norms and RoPE, GELU, gated residuals). The arithmetic per row is block()'s.
void Dit::block_fused(const Knobs& knobs, int i, float* tok, const LatentShape& s, const DitTime& time, const DitText& text,
                      Arena& arena) const {
  const DitBlock& b = blocks_[i];
  const int64_t N = s.tokens(), D = c_.dim, F = c_.ffn_dim, H = c_.heads, hd = c_.head_dim(), L = text.c.dim(0);
  const float eps = float(c_.eps), scale = 1.0f / std::sqrt(float(hd));
  const double theta = c_.rope_theta;
  const BlockScratch m = block_scratch(b, N, D, time, arena);
  const float *s1 = m.s1, *sc1 = m.sc1, *g1 = m.g1, *s2 = m.s2, *sc2 = m.sc2, *g2 = m.g2;
  float *h = m.h, *q = m.q, *k = m.k, *v = m.v, *o = m.o;
  float* f = arena.alloc(N * F);
  const RopeGrid grid{s.grid_t, s.grid_h, s.grid_w};

  {  // self-attention
    FF_PROFILE("fused norm+qkv+rope");
    const LinearWeights* w[3] = {&b.q1, &b.k1, &b.v1};
    float* y[3] = {q, k, v};
    auto input = [&](int64_t m0, int64_t m1, float* dst) {
      layer_norm_modulate(tok + m0 * D, dst, m1 - m0, D, nullptr, nullptr, s1, sc1, eps);
    };
    linear_fused(knobs, w, y, 3, N, nullptr, input, [&](int64_t m0, int64_t m1) {
      rms_norm(q + m0 * D, q + m0 * D, m1 - m0, D, b.norm_q1, eps);
      rms_norm(k + m0 * D, k + m0 * D, m1 - m0, D, b.norm_k1, eps);
      rope3d_rows(q, D, H, hd, grid, theta, m0, m1);
      rope3d_rows(k, D, H, hd, grid, theta, m0, m1);
    });
  }
  {
    FF_PROFILE("self-attention");
    self_attention(knobs, AttentionArgs{N, N, H, hd, q, D, k, D, v, D, o, D, nullptr, scale}, b.proj_l);
  }
  {
    // Everything after self-attention is row-wise (the text's keys and values are fixed), so it
    // runs as one pass over tiles of rows: o1 + gated residual, norm3 -> q2 -> q norm,
    // cross-attention, o2 + residual, norm + modulation -> fc1 -> GELU, fc2 + gated residual.
    // Each tile stays in cache, and the whole tail is one thread-pool round trip; the calls
    // inside a tile run on the tile's thread.
    FF_PROFILE("fused rows: o1, cross-attention, ffn");
    constexpr int64_t kTile = 96;
    const int64_t tiles = (N + kTile - 1) / kTile;
    ThreadPool::global().parallel_for(tiles, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = t * kTile, n = std::min(kTile, N - r0);
        float *tk = tok + r0 * D, *hr = h + r0 * D, *qr = q + r0 * D, *orow = o + r0 * D, *fr = f + r0 * F;
        auto one = [&](const LinearWeights& w, float* y, const float* x, const std::function<void(int64_t, int64_t, float*)>& in,
                       const std::function<void(int64_t, int64_t)>& out) {
          const LinearWeights* ws[1] = {&w};
          float* ys[1] = {y};
          linear_fused(knobs, ws, ys, 1, n, x, in, out);
        };
        auto residual_rows = [&](const float* gate) {
          return [=](int64_t m0, int64_t m1) { add_gated(tk + m0 * D, hr + m0 * D, m1 - m0, D, gate); };
        };
        one(b.o1, hr, orow, nullptr, residual_rows(g1));
        one(
            b.q2, qr, nullptr,
            [&](int64_t m0, int64_t m1, float* dst) { layer_norm(tk + m0 * D, dst, m1 - m0, D, b.norm3_w, b.norm3_b, eps); },
            [&](int64_t m0, int64_t m1) { rms_norm(qr + m0 * D, qr + m0 * D, m1 - m0, D, b.norm_q2, eps); });
        attention_dense(AttentionArgs{n, L, H, hd, qr, D, text.k[i].data(), D, text.v[i].data(), D, orow, D, text.mask.data(), scale});
        one(b.o2, hr, orow, nullptr, residual_rows(nullptr));
        one(
            b.fc1, fr, nullptr,
            [&](int64_t m0, int64_t m1, float* dst) {
              layer_norm_modulate(tk + m0 * D, dst, m1 - m0, D, nullptr, nullptr, s2, sc2, eps);
            },
            [&](int64_t m0, int64_t m1) { gelu_inplace(fr + m0 * F, (m1 - m0) * F); });
        one(b.fc2, hr, fr, nullptr, residual_rows(g2));
      }
    });
  }
}

void Dit::block(const Knobs& knobs, int i, float* tok, const LatentShape& s, const DitTime& time, const DitText& text, Arena& arena) const {
  if (g_fused_blocks && linear_fusable(knobs)) return block_fused(knobs, i, tok, s, time, text, arena);
  const DitBlock& b = blocks_[i];
  const int64_t N = s.tokens(), D = c_.dim, F = c_.ffn_dim, H = c_.heads, hd = c_.head_dim(), L = text.c.dim(0);
  const float eps = float(c_.eps), scale = 1.0f / std::sqrt(float(hd));
  const BlockScratch m = block_scratch(b, N, D, time, arena);
  const float *s1 = m.s1, *sc1 = m.sc1, *g1 = m.g1, *s2 = m.s2, *sc2 = m.sc2, *g2 = m.g2;
  float *h = m.h, *q = m.q, *k = m.k, *v = m.v, *o = m.o;

  // self-attention: h = LN(tok) * (1 + sc1) + s1; tok += g1 * o(attn(rope(norm_q(q h)), rope(norm_k(k h)), v h))
  {
    FF_PROFILE("norm+modulate");
    layer_norm_modulate(tok, h, N, D, nullptr, nullptr, s1, sc1, eps);
  }
  {
    FF_PROFILE("linear qkv1");
    linear(knobs, b.q1, h, N, q);  // [N, D]
    linear(knobs, b.k1, h, N, k);
    linear(knobs, b.v1, h, N, v);
  }
  {
    FF_PROFILE("rmsnorm+rope");
    rms_norm(q, q, N, D, b.norm_q1, eps);
    rms_norm(k, k, N, D, b.norm_k1, eps);
    RopeGrid grid{s.grid_t, s.grid_h, s.grid_w};
    rope3d(q, D, H, hd, grid, c_.rope_theta);  // [N, H, hd]
    rope3d(k, D, H, hd, grid, c_.rope_theta);
  }
  {
    FF_PROFILE("self-attention");
    self_attention(knobs, AttentionArgs{N, N, H, hd, q, D, k, D, v, D, o, D, nullptr, scale}, b.proj_l);
  }
  {
    FF_PROFILE("linear o1");
    linear(knobs, b.o1, o, N, h);
  }
  {
    FF_PROFILE("residual");
    add_gated(tok, h, N, D, g1);
  }

  // cross-attention to the text: tok += o2(attn(norm_q(q norm3(tok)), k_text, v_text))
  {
    FF_PROFILE("norm+modulate");
    layer_norm(tok, h, N, D, b.norm3_w, b.norm3_b, eps);
  }
  {
    FF_PROFILE("linear q2");
    linear(knobs, b.q2, h, N, q);
  }
  {
    FF_PROFILE("rmsnorm+rope");
    rms_norm(q, q, N, D, b.norm_q2, eps);
  }
  {
    FF_PROFILE("cross-attention");
    attention_dense(AttentionArgs{N, L, H, hd, q, D, text.k[i].data(), D, text.v[i].data(), D, o, D, text.mask.data(), scale});
  }
  {
    FF_PROFILE("linear o2");
    linear(knobs, b.o2, o, N, h);
  }
  {
    FF_PROFILE("residual");
    add_gated(tok, h, N, D, nullptr);
  }

  // FFN: tok += g2 * fc2(gelu(fc1(LN(tok) * (1 + sc2) + s2)))
  float* f = arena.alloc(N * F);
  {
    FF_PROFILE("norm+modulate");
    layer_norm_modulate(tok, h, N, D, nullptr, nullptr, s2, sc2, eps);
  }
  {
    FF_PROFILE("linear fc1");
    linear(knobs, b.fc1, h, N, f);  // [N, F]
  }
  {
    FF_PROFILE("gelu");
    gelu_inplace(f, N * F);
  }
  {
    FF_PROFILE("linear fc2");
    linear(knobs, b.fc2, f, N, h);
  }
  {
    FF_PROFILE("residual");
    add_gated(tok, h, N, D, g2);
  }
}

void Dit::head(const float* tok, const LatentShape& s, const DitTime& time, float* v, Arena& arena) const {
  const int64_t N = s.tokens(), D = c_.dim, P = c_.patch_numel();
  const int64_t pt = c_.patch[0], ph = c_.patch[1], pw = c_.patch[2];
  float* mod = arena.alloc(2 * D);  // shift, scale = head.modulation + e
  for (int64_t j = 0; j < D; ++j) {
    mod[j] = head_modulation_[j] + time.e[j];
    mod[D + j] = head_modulation_[D + j] + time.e[j];
  }
  float* h = arena.alloc(N * D);
  float* out = arena.alloc(N * P);
  layer_norm_modulate(tok, h, N, D, nullptr, nullptr, mod, mod + D, float(c_.eps));
  linear_fp32(head_proj_, h, N, out);  // [N, C*pt*ph*pw]
  for (int64_t n = 0; n < N; ++n) {    // unpatchify -> [C, T, H, W]
    int64_t gf = n / (s.grid_h * s.grid_w), gr = (n / s.grid_w) % s.grid_h, gc = n % s.grid_w;
    const float* src = out + n * P;
    for (int64_t ch = 0; ch < s.channels; ++ch)
      for (int64_t a = 0; a < pt; ++a)
        for (int64_t b = 0; b < ph; ++b)
          for (int64_t d = 0; d < pw; ++d)
            v[((ch * s.frames + gf * pt + a) * s.height + gr * ph + b) * s.width + gc * pw + d] = *src++;
  }
}

void Dit::forward(const Knobs& knobs, const float* x, const LatentShape& s, double t, const DitText& text, float* v, Arena& arena,
                  TeaCache* cache) const {
  FF_PROFILE("dit forward");
  arena.reset();
  DitTime time = time_embedding(t);
  const int64_t n = s.tokens() * c_.dim;
  float* tok = arena.alloc(n);
  embed(x, s, tok);
  float* before = nullptr;
  if (cache) {
    // TeaCache's signal: block 0's modulated input h = LN(tok) * (1 + sc1) + s1.
    const int64_t D = c_.dim;
    float* h = arena.alloc(n);
    std::vector<float> shift(D), scale(D);
    for (int64_t j = 0; j < D; ++j) {
      shift[j] = time.m[j] + blocks_[0].modulation[j];
      scale[j] = time.m[D + j] + blocks_[0].modulation[D + j];
    }
    layer_norm_modulate(tok, h, s.tokens(), D, nullptr, nullptr, shift.data(), scale.data(), float(c_.eps));
    if (!cache->should_compute(h, n)) {
      cache->apply_residual(tok, n);
      head(tok, s, time, v, arena);
      return;
    }
    before = h;  // h is dead: keep the block stack's input there
    std::memcpy(before, tok, sizeof(float) * n);
  }
  const Arena::Mark after_tokens = arena.mark();
  for (int i = 0; i < layers(); ++i) {
    block(knobs, i, tok, s, time, text, arena);
    arena.rewind(after_tokens);  // block scratch is dead once the residual stream is updated
  }
  if (cache) cache->store_residual(before, tok, n);
  FF_PROFILE("head");
  head(tok, s, time, v, arena);
}

}  // namespace ff
