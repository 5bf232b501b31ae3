#include "bench_accel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>

#include <unistd.h>

#include "core/cpu_features.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_sage.h"
#include "kernels/cpu/attention_sla.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_int8.h"
#include "model/model.h"
#include "random_model.h"

namespace ffbench {

namespace {

std::vector<float> noise(size_t n, uint64_t seed, float scale) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  for (float& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = scale * (static_cast<float>((s >> 40) & 0xFFFFFF) / static_cast<float>(1 << 23) - 1.0f);
  }
  return v;
}

// Median wall seconds of fn over `reps` timed calls, after one warm-up call unless the calls are
// long enough for a cold first one to be just another sample.
double median_seconds(int reps, const std::function<void()>& fn, bool warmUp = true) {
  if (warmUp) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void compare(const std::vector<float>& out, const std::vector<float>& ref, AccelRow& row) {
  double diff = 0, norm = 0, dot = 0, normOut = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    diff += (double{out[i]} - ref[i]) * (double{out[i]} - ref[i]);
    norm += double{ref[i]} * ref[i];
    normOut += double{out[i]} * out[i];
    dot += double{out[i]} * ref[i];
  }
  row.rel_l2 = std::sqrt(diff / norm);
  row.cosine = dot / std::sqrt(norm * normOut);
}

const char* fp32_gemm_path() {
  return ff::variant_name(ff::best_variant(ff::gemm_variants()));
}

void gemm_rows(int64_t M, int64_t N, int64_t K, std::vector<AccelRow>& rows) {
  const auto x = noise(M * K, 1, 2.0f), w = noise(N * K, 2, 0.1f), b = noise(N, 3, 1.0f);
  std::vector<float> ref(M * N), out(M * N);
  const double ops = 2.0 * M * N * K;
  std::ostringstream shape;
  shape << "M=" << M << " N=" << N << " K=" << K;
  const int reps = M >= 2048 ? 5 : 9;

  ff::GemmArgs g{M, N, K, x.data(), K, w.data(), K, ref.data(), N, b.data(), false};
  AccelRow fp32{"gemm", shape.str(), "fp32", fp32_gemm_path()};
  fp32.seconds = median_seconds(reps, [&] { ff::gemm_nt(g); });
  fp32.gflops_or_gops = ops / fp32.seconds / 1e9;
  rows.push_back(fp32);

  const ff::Variant v = ff::cpu::bestInt8Variant();
  const auto layer = ff::cpu::quantizeLinear(w.data(), b.data(), N, K, v);
  AccelRow int8{"gemm", shape.str(), "w8a8", ff::variant_name(v)};
  ff::cpu::linearW8A8(layer, x.data(), M, out.data());
  compare(out, ref, int8);
  int8.seconds = median_seconds(reps, [&] { ff::cpu::linearW8A8(layer, x.data(), M, out.data()); });
  int8.gflops_or_gops = ops / int8.seconds / 1e9;
  int8.speedup = fp32.seconds / int8.seconds;
  rows.push_back(int8);
}

// Video-like inputs: every channel of q and k carries a slow oscillation of its own frequency
// (as RoPE'd neighbouring patches do), so q_i . k_j peaks near i = j and attention is local; V
// drifts as well so that the dense output is more than averaged noise; K has outlier channels
// (a +9 offset on every 7th channel).
struct Qkv {
  std::vector<float> q, k, v;
};
Qkv attention_inputs(int64_t n, int64_t width) {
  Qkv x{noise(n * width, 11, 1.0f), noise(n * width, 12, 1.0f), noise(n * width, 13, 1.0f)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < width; ++c) {
      const float freq = 0.002f + 0.05f * static_cast<float>(c % 16) / 16.0f;
      const float drift = 1.5f * std::sin(freq * static_cast<float>(i) + 0.7f * static_cast<float>(c));
      x.q[i * width + c] += drift;
      x.k[i * width + c] += drift + (c % 7 == 3 ? 9.0f : 0.0f);
      x.v[i * width + c] += std::sin(0.01f * static_cast<float>(i) + 1.3f * static_cast<float>(c));
    }
  return x;
}

void attention_rows(int64_t n, int64_t heads, int64_t hd, const std::vector<float>& topKs, int reps,
                    std::vector<AccelRow>& rows) {
  const int64_t w = heads * hd;
  Qkv in = attention_inputs(n, w);
  std::vector<float> ref(n * w), out(n * w);
  const ff::AttentionArgs args{n, n, heads, hd, in.q.data(), w, in.k.data(), w, in.v.data(), w, ref.data(), w,
                               nullptr, 1.0f / std::sqrt(static_cast<float>(hd))};
  ff::AttentionArgs fast = args;
  fast.out = out.data();
  const double ops = 4.0 * n * n * hd * heads;  // Q.K^T and P.V of dense attention
  std::ostringstream base;
  base << "N=" << n << " heads=" << heads << " hd=" << hd;

  const char* densePath = ff::variant_score(ff::Variant::Avx512) > 0 ? "avx512" : "scalar";
  AccelRow dense{"attention", base.str(), "dense", densePath};
  dense.seconds = median_seconds(reps, [&] { ff::attention_dense(args); });
  dense.gflops_or_gops = ops / dense.seconds / 1e9;
  rows.push_back(dense);

  const ff::Variant v = ff::cpu::bestInt8Variant();
  AccelRow sage{"attention", base.str(), "sage", ff::variant_name(v)};
  ff::cpu::sageAttention(fast, v);
  compare(out, ref, sage);
  sage.seconds = median_seconds(reps, [&] { ff::cpu::sageAttention(fast, v); });
  sage.gflops_or_gops = ops / sage.seconds / 1e9;
  sage.speedup = dense.seconds / sage.seconds;
  rows.push_back(sage);

  // With proj_l absent the linear branch is exactly zero and skipped; with one (a trained
  // model's, here a random [hd, hd]) it runs.
  const std::vector<float> projL = noise(hd * hd, 14, 0.2f);
  for (float topK : topKs) for (const float* proj : {static_cast<const float*>(nullptr), projL.data()}) {
    std::ostringstream shape;
    shape << base.str() << " topK=" << topK << (proj ? " proj_l" : "");
    AccelRow sla{"attention", shape.str(), "sla", ff::variant_name(v)};
    const ff::cpu::SlaOptions options{topK, proj};
    ff::cpu::slaAttention(fast, options, v);
    compare(out, ref, sla);
    sla.seconds = median_seconds(reps, [&] { ff::cpu::slaAttention(fast, options, v); });
    sla.gflops_or_gops = ops / sla.seconds / 1e9;
    sla.speedup = dense.seconds / sla.seconds;
    rows.push_back(sla);
  }
}

}  // namespace

std::vector<AccelRow> accel_rows(bool quick) {
  std::vector<AccelRow> rows;
  const std::vector<int64_t> ms = quick ? std::vector<int64_t>{576} : std::vector<int64_t>{576, 4096};
  for (int64_t m : ms) {
    gemm_rows(m, 384, 384, rows);
    gemm_rows(m, 1536, 384, rows);
    gemm_rows(m, 384, 1536, rows);
  }
  if (quick) {
    attention_rows(1024, 2, 64, {0.1f}, 3, rows);
  } else {
    attention_rows(4096, 2, 64, {0.1f}, 3, rows);
    attention_rows(16384, 1, 64, {0.1f}, 2, rows);
  }
  return rows;
}

std::vector<AccelRow> accel_forward_rows(bool quick) {
  char tmpl[] = "/tmp/ff-bench-dit-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) return {};
  fftools::write_random_model(dir, fftools::bench_model_spec());
  auto model = ff::Model::load(dir, {});
  ff::Dit& net = model->dit(ff::WeightsKind::Dit);
  net.prepare_linears(ff::LinearKind::W8a8);
  const ff::DitConfig& c = model->config().dit;

  struct Video { int width, height, frames; };
  // 192x192x13 -> 4 x 12 x 12 = 576 tokens; 256x256x61 -> 16 x 16 x 16 = 4096 tokens.
  std::vector<Video> videos{{192, 192, 13}};
  if (!quick) videos.push_back({256, 256, 61});
  const ff::Variant int8 = ff::cpu::bestInt8Variant();
  std::vector<AccelRow> rows;
  for (const Video& video : videos) {
    ff::Request r;
    r.prompt = "a red circle moving left";
    r.width = video.width;
    r.height = video.height;
    r.frames = video.frames;
    ff::resolve_request(model->config(), model->has_student(), r);
    const ff::LatentShape s = ff::latent_shape(model->config(), r.width, r.height, r.frames);
    const ff::DitText text = net.prepare_text(model->encode_prompt(r.prompt));
    const std::vector<float> x = noise(s.numel(), 21, 1.0f);
    std::vector<float> ref(s.numel()), v(s.numel());
    ff::Arena arena;
    std::ostringstream shape;
    shape << "tokens=" << s.tokens() << " dim=" << c.dim << " layers=" << c.layers << " heads=" << c.heads;
    const bool large = s.tokens() > 1000;
    // Dense-equivalent operations of one forward: per block the ten block linears (attn2 k/v are
    // per generation), Q.K^T and P.V of self-attention and of cross-attention to L text tokens.
    const double N = double(s.tokens()), D = double(c.dim), F = double(c.ffn_dim);
    const double L = double(text.c.dim(0));
    const double ops = double(c.layers) * (2 * N * (6 * D * D + 2 * D * F) + 4 * N * N * D + 4 * N * L * D);
    double denseSeconds = 0;
    for (auto attention : {ff::AttentionKind::Dense, ff::AttentionKind::Sage, ff::AttentionKind::Sla}) {
      for (auto linear : {ff::LinearKind::Fp32, ff::LinearKind::W8a8}) {
        ff::Knobs k;
        k.attention = attention;
        k.linear = linear;
        k.sla_top_k = 0.1;
        const bool isBase = attention == ff::AttentionKind::Dense && linear == ff::LinearKind::Fp32;
        float* out = isBase ? ref.data() : v.data();
        AccelRow row{"dit_forward", shape.str(),
                     std::string(ff::attention_name(attention)) + "+" + ff::linear_name(linear),
                     isBase ? fp32_gemm_path() : ff::variant_name(int8)};
        row.seconds = median_seconds(3, [&] { net.forward(k, x.data(), s, 0.7, text, out, arena); }, !large);
        if (isBase) {
          denseSeconds = row.seconds;
        } else {
          compare(v, ref, row);
        }
        row.speedup = denseSeconds / row.seconds;
        row.gflops_or_gops = ops / row.seconds / 1e9;
        rows.push_back(row);
      }
    }
  }
  for (const char* f : {"config.json", "vocab.txt", "text_encoder.safetensors", "dit.safetensors", "vae_decoder.safetensors"})
    ::unlink((std::string(dir) + "/" + f).c_str());
  ::rmdir(dir);
  return rows;
}

std::string accel_row_json(const AccelRow& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"op\":\"%s\",\"shape\":\"%s\",\"variant\":\"%s\",\"path\":\"%s\",\"seconds\":%.6g,"
                "\"gflops_or_gops\":%.4g,\"speedup\":%.4g,\"error\":{\"relL2\":%.4g,\"cosine\":%.6f}}",
                r.op.c_str(), r.shape.c_str(), r.variant.c_str(), r.path.c_str(), r.seconds, r.gflops_or_gops,
                r.speedup, r.rel_l2, r.cosine);
  return buf;
}

}  // namespace ffbench
