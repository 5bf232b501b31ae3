#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "harness.h"
#include "model/model.h"
#include "random_model.h"
#include "sampling/samplers.h"

namespace {

// Temporary model directories, removed when the test binary exits.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const std::string& d : dirs) std::filesystem::remove_all(d);
  }
};
TempDirs temp_dirs;

std::string temp_dir(const std::string& tag) {
  char tmpl[256];
  std::snprintf(tmpl, sizeof tmpl, "/tmp/ff-test-%s-XXXXXX", tag.c_str());
  char* d = mkdtemp(tmpl);
  if (!d) ff::fail(ff::ErrorCode::Internal, "mkdtemp failed");
  temp_dirs.dirs.emplace_back(d);
  return d;
}

const std::string& tiny_dir() {
  static const std::string dir = [] {
    std::string d = temp_dir("tiny");
    fftools::write_random_model(d, fftools::tiny_model_spec());
    return d;
  }();
  return dir;
}

std::string copy_model(const std::string& tag) {
  std::string d = temp_dir(tag);
  for (const char* f : {"config.json", "vocab.txt", "text_encoder.safetensors", "dit.safetensors", "student.safetensors", "vae_decoder.safetensors"}) {
    std::ifstream in(tiny_dir() + "/" + f, std::ios::binary);
    std::ofstream out(d + "/" + f, std::ios::binary);
    out << in.rdbuf();
  }
  return d;
}

ff::Request tiny_request(int steps = 2) {
  ff::Request r;
  r.prompt = "a red circle moving left";
  r.seed = 42;
  r.knobs.steps = steps;
  return r;
}

const ff::ProgressFn no_progress = [](const char*, int, int) {};

}  // namespace

TEST(generates_a_video_from_a_random_model_reproducibly) {
  auto m = ff::Model::load(tiny_dir(), {});
  std::vector<std::string> stages;
  ff::GenerateResult a = m->generate(tiny_request(), [&](const char* st, int, int) { stages.push_back(st); }, nullptr);
  CHECK(a.width == 32 && a.height == 32 && a.frame_count == 5);
  CHECK(a.frames.size() == size_t(5 * 32 * 32 * 3));
  CHECK(a.nfe == 4);  // 2 steps x (cond + uncond)
  CHECK(a.timings.denoise > 0 && a.timings.decode > 0 && a.timings.text_encode > 0);
  CHECK(stages.front() == "textEncode" && stages.back() == "decode");
  std::set<uint8_t> distinct(a.frames.begin(), a.frames.end());
  CHECK_MSG(distinct.size() > 10, "frames look constant: " << distinct.size() << " distinct values");
  ff::GenerateResult b = m->generate(tiny_request(), no_progress, nullptr);
  CHECK(a.frames == b.frames);
  ff::Request other = tiny_request();
  other.seed = 43;
  CHECK(m->generate(other, no_progress, nullptr).frames != a.frames);
}

TEST(sampler_and_guidance_set_the_number_of_evaluations) {
  auto m = ff::Model::load(tiny_dir(), {});
  ff::Request r = tiny_request(3);
  r.knobs.guidance_scale = 1.0;
  CHECK(m->generate(r, no_progress, nullptr).nfe == 3);
  r.knobs.sampler = ff::SamplerKind::Rcm;
  r.knobs.weights = ff::WeightsKind::Student;
  r.knobs.steps = 4;
  ff::GenerateResult g = m->generate(r, no_progress, nullptr);
  CHECK(g.nfe == 4);
  CHECK(g.request.knobs.guidance_scale == 1.0);
}

TEST(schedules_follow_the_spec) {
  auto t = ff::euler_schedule(4, 3.0);
  CHECK(t.size() == 5 && t[0] == 1.0 && t[4] == 0.0);
  CHECK(std::fabs(t[2] - 3.0 * 0.5 / (1.0 + 2.0 * 0.5)) < 1e-12);
  for (size_t i = 1; i < t.size(); ++i) CHECK(t[i] < t[i - 1]);
  auto r = ff::rcm_schedule(4, 80.0);
  CHECK(r.size() == 5 && r[4] == 0.0);
  CHECK(std::fabs(r[1] - std::sin(1.5) / (std::sin(1.5) + std::cos(1.5))) < 1e-12);
  CHECK(r[0] > 0.98 && r[0] < 1.0);
}

TEST(noise_stream_is_reproducible_standard_normal_and_continues) {
  ff::NoiseStream a(7), b(7);
  std::vector<float> x(100001), y(100001);
  a.fill(x.data(), x.size());
  b.fill(y.data(), y.size());
  CHECK(x == y);
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= x.size();
  for (float v : x) var += (v - mean) * (v - mean);
  var /= x.size();
  CHECK_MSG(std::fabs(mean) < 0.01 && std::fabs(var - 1) < 0.02, "mean " << mean << " var " << var);
  a.fill(x.data(), 10);
  CHECK(x[0] != y[0]);
  CHECK(a.counter() == 100002 + 10);
}

TEST(euler_integrates_a_constant_velocity_exactly) {
  ff::NoiseStream stream(3);
  ff::NoiseFn noise = [&](float* out, int64_t n) { stream.fill(out, n); };
  std::vector<float> eps(8);
  ff::NoiseStream(3).fill(eps.data(), 8);
  int calls = 0;
  auto net = [&](const float*, double, ff::Guidance which, float* v) {
    ++calls;
    for (int i = 0; i < 8; ++i) v[i] = which == ff::Guidance::Cond ? 1.0f : 0.5f;
  };
  auto res = ff::sample_euler(8, 5, 3.0, 2.0, noise, net, [](int, int) {});
  // v = 0.5 + 2 (1 - 0.5) = 1.5 for t from 1 to 0: x = eps - 1.5
  for (int i = 0; i < 8; ++i) CHECK(std::fabs(res.x[i] - (eps[i] - 1.5f)) < 1e-5);
  CHECK(calls == 10 && res.nfe == 10);
}

TEST(rcm_returns_the_last_clean_estimate) {
  ff::NoiseStream stream(5);
  ff::NoiseFn noise = [&](float* out, int64_t n) { stream.fill(out, n); };
  auto net = [&](const float* x, double t, ff::Guidance, float* v) {
    for (int i = 0; i < 4; ++i) v[i] = float((x[i] - 2.0) / t);  // v = eps - x0 with x0 = 2
  };
  auto res = ff::sample_rcm(4, 3, 80.0, noise, net, [](int, int) {});
  for (float v : res.x) CHECK(std::fabs(v - 2.0f) < 1e-4);
  CHECK(res.nfe == 3);
}

TEST(rejects_bad_requests_with_the_field_name) {
  auto m = ff::Model::load(tiny_dir(), {});
  auto run = [&](ff::Request r) { m->generate(r, no_progress, nullptr); };
  ff::Request r = tiny_request();
  r.width = 40;
  CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "width");
  r = tiny_request();
  r.frames = 6;
  CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "frames");
  r = tiny_request();
  r.prompt = "a purple circle";
  CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "'purple'");
  r = tiny_request();
  r.prompt = "a a a a a a a a";
  CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "more than 7 words");
  r = tiny_request();
  r.knobs.sampler = ff::SamplerKind::Rcm;
  r.knobs.steps = 5;
  CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "steps");
  r = tiny_request();
  r.knobs.attention = ff::AttentionKind::Sla;
  if (!ff::knob_supported(ff::AttentionKind::Sla)) CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "attention: 'sla'");
  r = tiny_request();
  r.knobs.linear = ff::LinearKind::Bf16;
  if (!ff::knob_supported(ff::LinearKind::Bf16)) CHECK_THROWS(run(r), ff::ErrorCode::BadRequest, "linear: 'bf16'");
  CHECK_THROWS(ff::parse_attention("fast"), ff::ErrorCode::BadRequest, "dense, sage, sla");
}

TEST(abort_flag_stops_before_the_next_evaluation) {
  auto m = ff::Model::load(tiny_dir(), {});
  std::atomic<int> abort{0};
  int steps_seen = 0;
  auto progress = [&](const char* stage, int step, int) {
    if (std::strcmp(stage, "denoise") == 0 && step == 1) {
      abort = 1;
      steps_seen = step;
    }
  };
  CHECK_THROWS(m->generate(tiny_request(4), progress, &abort), ff::ErrorCode::Aborted, "aborted");
  CHECK(steps_seen == 1);
}

TEST(memory_limit_gives_out_of_memory_before_work) {
  ff::LoadOptions o;
  o.memory_limit_bytes = 1 << 16;
  auto m = ff::Model::load(tiny_dir(), o);
  CHECK_THROWS(m->generate(tiny_request(), no_progress, nullptr), ff::ErrorCode::OutOfMemory, "MiB");
}

TEST(half_precision_checkpoints_load_and_match_fp32) {
  std::string f16 = temp_dir("f16"), bf16 = temp_dir("bf16");
  auto spec = fftools::tiny_model_spec();
  spec.dtype = ff::DType::F16;
  fftools::write_random_model(f16, spec);
  spec.dtype = ff::DType::BF16;
  fftools::write_random_model(bf16, spec);
  auto ref = ff::Model::load(tiny_dir(), {})->generate(tiny_request(), no_progress, nullptr);
  for (const std::string& d : {f16, bf16}) {
    auto g = ff::Model::load(d, {})->generate(tiny_request(), no_progress, nullptr);
    double diff = 0;
    for (size_t i = 0; i < g.frames.size(); ++i) diff += std::abs(int(g.frames[i]) - int(ref.frames[i]));
    diff /= g.frames.size();
    CHECK_MSG(diff < 4.0, d << " mean abs pixel difference " << diff);
  }
}

namespace {

// Rewrites one tensor of a copy of the tiny model.
std::string model_with(const std::string& tag, const std::string& file, const std::function<void(std::vector<fftools::NamedTensor>&)>& edit,
                       ff::DType dtype = ff::DType::F32) {
  std::string d = copy_model(tag);
  auto tensors = fftools::read_safetensors(d + "/" + file);
  edit(tensors);
  fftools::write_safetensors(d + "/" + file, tensors, dtype);
  return d;
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(corrupt_checkpoints_give_errors_naming_file_tensor_and_problem) {
  auto load = [](const std::string& d) { ff::Model::load(d, {}); };
  std::string d = model_with("shape", "dit.safetensors", [](auto& ts) {
    for (auto& t : ts)
      if (t.name == "dit.blocks.1.attn1.q.weight") {
        t.shape = {48, 47};
        t.values.resize(48 * 47);
      }
  });
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "dit.safetensors: tensor dit.blocks.1.attn1.q.weight: shape [48, 47]");
  d = model_with("missing", "vae_decoder.safetensors", [](auto& ts) { ts.pop_back(); });
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "missing");
  d = model_with("extra", "text_encoder.safetensors", [](auto& ts) { ts.push_back({"text.surprise", {2}, {1, 2}}); });
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "text.surprise: not a parameter");

  d = copy_model("trunc");
  std::string bytes = read_bytes(d + "/dit.safetensors");
  write_bytes(d + "/dit.safetensors", bytes.substr(0, bytes.size() - 100));
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "truncated");
  write_bytes(d + "/dit.safetensors", bytes.substr(0, 5));
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "shorter than the 8-byte header");
  std::string huge = bytes;
  for (int i = 0; i < 8; ++i) huge[i] = char(0x7f);
  write_bytes(d + "/dit.safetensors", huge);
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "exceeds the limit");
  std::string wrong_dtype = bytes;
  size_t pos = wrong_dtype.find("\"F32\"");
  wrong_dtype.replace(pos, 5, "\"I8\" ");
  write_bytes(d + "/dit.safetensors", wrong_dtype);
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "dit.safetensors: tensor");
  std::string f64 = bytes;
  f64.replace(f64.find("\"F32\""), 5, "\"F64\"");
  write_bytes(d + "/dit.safetensors", f64);
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "unsupported dtype F64");

  d = copy_model("config");
  std::string cfg = read_bytes(d + "/config.json");
  std::string bad_heads = cfg;
  bad_heads.replace(bad_heads.find("\"heads\":2,\"ffn_dim\":96"), 9, "\"heads\":5");
  write_bytes(d + "/config.json", bad_heads);
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "dit.heads");
  write_bytes(d + "/config.json", "{\"format\": \"framefleet-dit-v1\", ");
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "config.json: not valid JSON");
  write_bytes(d + "/config.json", cfg);
  write_bytes(d + "/vocab.txt", "<pad>\n<bos>\nonly\n");
  CHECK_THROWS(load(d), ff::ErrorCode::ModelFormat, "vocab.txt: 3 lines");
}

TEST(nan_weights_are_rejected_naming_the_tensor) {
  std::string d = model_with("nan", "dit.safetensors", [](auto& ts) {
    for (auto& t : ts)
      if (t.name == "dit.blocks.0.ffn.fc2.weight") t.values[17] = NAN;
  });
  auto m = ff::Model::load(d, {});  // load maps only
  CHECK_THROWS(m->generate(tiny_request(), no_progress, nullptr), ff::ErrorCode::ModelFormat,
               "dit.safetensors: tensor dit.blocks.0.ffn.fc2.weight: NaN value at element 17");
}

TEST(bf16_linears_track_fp32_and_alternate_with_other_kinds) {
  if (!ff::knob_supported(ff::LinearKind::Bf16)) return;  // needs AVX-512 BF16
  auto m = ff::Model::load(tiny_dir(), {});
  auto fp32 = m->generate(tiny_request(), no_progress, nullptr);
  ff::Request r = tiny_request();
  r.knobs.linear = ff::LinearKind::Bf16;
  auto bf16 = m->generate(r, no_progress, nullptr);
  double diff = 0;
  for (size_t i = 0; i < fp32.frames.size(); ++i) diff += std::abs(int(bf16.frames[i]) - int(fp32.frames[i]));
  diff /= fp32.frames.size();
  CHECK_MSG(diff < 4.0 && bf16.frames != fp32.frames, "mean abs pixel difference " << diff);
  if (ff::knob_supported(ff::LinearKind::W8a8)) {  // each kind keeps its own prepared weights
    r.knobs.linear = ff::LinearKind::W8a8;
    m->generate(r, no_progress, nullptr);
    r.knobs.linear = ff::LinearKind::Bf16;
    CHECK(m->generate(r, no_progress, nullptr).frames == bf16.frames);
  }
}

TEST(overflowing_activations_fail_with_e_numeric) {
  // Finite but huge weights: the patch embedding overflows to inf and the latents turn non-finite.
  std::string d = model_with("overflow", "dit.safetensors", [](auto& ts) {
    for (auto& t : ts)
      if (t.name == "dit.patch_embed.weight")
        for (float& v : t.values) v = v >= 0 ? 3e38f : -3e38f;
  });
  auto m = ff::Model::load(d, {});
  CHECK_THROWS(m->generate(tiny_request(), no_progress, nullptr), ff::ErrorCode::Numeric, "non-finite");
}
