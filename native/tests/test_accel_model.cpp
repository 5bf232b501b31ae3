// The acceleration knobs inside the model: each dispatch point runs its kernel, the knob-off path
// stays bit-identical, TeaCache skips and reuses, and the rCM time grid is the specified one.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "harness.h"
#include "model/model.h"
#include "random_model.h"
#include "sampling/samplers.h"

namespace {

const std::string& accel_model_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/ff-test-accel-XXXXXX";
    std::string d = mkdtemp(tmpl);
    fftools::write_random_model(d, fftools::tiny_model_spec());
    return d;
  }();
  return dir;
}

ff::Request request(int steps) {
  ff::Request r;
  r.prompt = "a red circle moving left";
  r.seed = 9;
  r.knobs.steps = steps;
  return r;
}

const ff::ProgressFn quiet = [](const char*, int, int) {};

// v = DiT(x, t, ctx) of the teacher under `knobs`, on fixed random latents.
std::vector<float> velocity(ff::Model& m, const ff::Knobs& knobs) {
  ff::Request r = request(1);
  r.knobs = knobs;
  ff::resolve_request(m.config(), m.has_student(), r);
  const ff::LatentShape s = ff::latent_shape(m.config(), r.width, r.height, r.frames);
  ff::Dit& net = m.dit(ff::WeightsKind::Dit);
  net.prepare_linears(knobs.linear);
  const ff::DitText text = net.prepare_text(m.encode_prompt(r.prompt));
  std::vector<float> x = fftest::random_vector(s.numel(), 77), v(s.numel());
  ff::Arena arena;
  net.forward(r.knobs, x.data(), s, 0.7, text, v.data(), arena);
  return v;
}

}  // namespace

TEST(every_acceleration_knob_is_built_and_accepted) {
  for (auto a : {ff::AttentionKind::Dense, ff::AttentionKind::Sage, ff::AttentionKind::Sla}) CHECK(ff::knob_supported(a));
  CHECK(ff::knob_supported(ff::LinearKind::W8a8));
  CHECK(ff::tea_cache_supported());
}

TEST(int8_knobs_track_the_fp32_forward) {
  auto m = ff::Model::load(accel_model_dir(), {});
  const std::vector<float> plain = velocity(*m, ff::Knobs{});
  struct Case { ff::AttentionKind attention; ff::LinearKind linear; double topK; double maxErr; };
  const Case cases[] = {{ff::AttentionKind::Sage, ff::LinearKind::Fp32, 0.1, 3e-2},
                        {ff::AttentionKind::Dense, ff::LinearKind::W8a8, 0.1, 3e-2},
                        {ff::AttentionKind::Sla, ff::LinearKind::Fp32, 1.0, 3e-2},
                        {ff::AttentionKind::Sla, ff::LinearKind::W8a8, 1.0, 5e-2}};
  for (const Case& c : cases) {
    ff::Knobs k;
    k.attention = c.attention;
    k.linear = c.linear;
    k.sla_top_k = c.topK;
    const std::vector<float> v = velocity(*m, k);
    const double err = fftest::rel_l2(v.data(), plain.data(), v.size());
    const double cos = fftest::cosine(v.data(), plain.data(), v.size());
    CHECK_MSG(err <= c.maxErr && cos >= 0.999 && err > 0,
              ff::attention_name(c.attention) << "/" << ff::linear_name(c.linear) << ": relL2 " << err << " cosine " << cos);
  }
  // SLA at topK 1 selects every block: exactly the Sage forward.
  ff::Knobs sage, sla;
  sage.attention = ff::AttentionKind::Sage;
  sla.attention = ff::AttentionKind::Sla;
  sla.sla_top_k = 1.0;
  CHECK(velocity(*m, sage) == velocity(*m, sla));
}

TEST(fused_w8a8_blocks_equal_the_layer_by_layer_schedule) {
  // The fused schedule makes the same rows with the same row kernels, so the forward is
  // bit-identical to running each op over all tokens in turn.
  auto m = ff::Model::load(accel_model_dir(), {});
  for (ff::AttentionKind attention : {ff::AttentionKind::Dense, ff::AttentionKind::Sla}) {
    ff::Knobs k;
    k.linear = ff::LinearKind::W8a8;
    k.attention = attention;
    const std::vector<float> fused = velocity(*m, k);
    ff::Dit::set_fused_blocks(false);
    const std::vector<float> plain = velocity(*m, k);
    ff::Dit::set_fused_blocks(true);
    CHECK_MSG(fused == plain, ff::attention_name(attention) << ": relL2 " << fftest::rel_l2(fused.data(), plain.data(), fused.size()));
  }
}

TEST(knobs_off_stay_bit_identical_after_int8_kernels_ran) {
  auto m = ff::Model::load(accel_model_dir(), {});
  const std::vector<float> before = velocity(*m, ff::Knobs{});
  ff::Knobs turbo;
  turbo.attention = ff::AttentionKind::Sla;
  turbo.linear = ff::LinearKind::W8a8;
  velocity(*m, turbo);  // quantized weights now sit beside the fp32 ones
  CHECK(velocity(*m, ff::Knobs{}) == before);
}

TEST(teacache_with_a_threshold_nothing_reaches_is_bit_identical_to_no_cache) {
  auto m = ff::Model::load(accel_model_dir(), {});
  const ff::GenerateResult plain = m->generate(request(5), quiet, nullptr);
  ff::Request r = request(5);
  r.knobs.tea_cache = 1e-300;  // the cache machinery runs but never skips
  const ff::GenerateResult cached = m->generate(r, quiet, nullptr);
  CHECK(cached.blocks_skipped == 0);
  CHECK(cached.nfe == plain.nfe);
  CHECK(cached.frames == plain.frames);
  CHECK(plain.blocks_skipped == 0);
}

TEST(teacache_skips_middle_steps_per_pass_and_reuses_the_residual) {
  auto m = ff::Model::load(accel_model_dir(), {});
  const ff::GenerateResult plain = m->generate(request(5), quiet, nullptr);
  ff::Request r = request(5);
  r.knobs.tea_cache = 10;  // the largest threshold: the 3 middle steps of each CFG pass are skipped
  const ff::GenerateResult cached = m->generate(r, quiet, nullptr);
  CHECK_MSG(cached.blocks_skipped == 6, "skipped " << cached.blocks_skipped);
  // NFE counts full evaluations only: 5 steps x 2 CFG passes minus the 6 skipped.
  CHECK_MSG(plain.nfe == 10, "plain nfe " << plain.nfe);
  CHECK_MSG(cached.nfe == 4, "cached nfe " << cached.nfe);
  CHECK(cached.frames != plain.frames);
  double diff = 0;
  for (size_t i = 0; i < plain.frames.size(); ++i) diff += std::abs(int(cached.frames[i]) - int(plain.frames[i]));
  CHECK_MSG(diff / double(plain.frames.size()) < 40.0, "mean absolute pixel change " << diff / double(plain.frames.size()));
}

TEST(rcm_time_grid_is_exactly_the_specified_one) {
  // angles [atan(sigma_max), 1.5, 1.4, 1.0][:N], t = sin / (sin + cos), then 0
  const double expected[4] = {0.9877, 0.9338, 0.8529, 0.6090};
  for (int steps = 1; steps <= 4; ++steps) {
    const std::vector<double> t = ff::rcm_schedule(steps, 80.0);
    CHECK(t.size() == size_t(steps + 1));
    CHECK(t.back() == 0.0);
    const double angles[4] = {std::atan(80.0), 1.5, 1.4, 1.0};
    for (int i = 0; i < steps; ++i) {
      CHECK_MSG(std::fabs(t[i] - expected[i]) < 5e-5, "t[" << i << "] = " << t[i]);
      CHECK(t[i] == std::sin(angles[i]) / (std::sin(angles[i]) + std::cos(angles[i])));
    }
  }
}
