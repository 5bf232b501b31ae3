// The engine's CUDA path (model/backend.h, kernels/cuda/engine_dit.cu) against its CPU path on
// the same model and the same inputs: one DiT evaluation per attention kind and CFG pass, the
// CUDA graph replay against the eager run, a TeaCache skip, then short generations and an abort.
// The model is the bundled tiny-shapes ($FRAMEFLEET_MODELS_DIR or the checkout's models/), or,
// where neither is present, a random model of the bench's size (head_dim 64). Called from
// framefleet_cuda_tests' main (test_cuda.cpp).
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/error.h"
#include "model/backend.h"
#include "model/model.h"
#include "model/teacache.h"
#include "random_model.h"

using EngineReport = void (*)(const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
                               double maxRel, double minCos);

namespace {

int g_engineFailures = 0;

void verdict(const std::string& name, bool ok, const std::string& detail = "") {
  if (!ok) ++g_engineFailures;
  std::printf("%-58s %s  %s\n", name.c_str(), detail.c_str(), ok ? "PASS" : "FAIL");
}

// test_cuda.cpp's report(): prints relative L2, cosine and the verdict, counts a failure.
EngineReport g_report = nullptr;

void check(const std::string& name, const std::vector<float>& got, const std::vector<float>& ref, double maxRel, double minCos) {
  if (got.size() != ref.size()) return verdict(name, false, "sizes differ");
  g_report(name, got, ref, maxRel, minCos);
}

std::string modelDir() {
  std::string root;
  if (const char* env = std::getenv("FRAMEFLEET_MODELS_DIR")) root = env;
#ifdef FF_MODELS_DIR
  if (root.empty()) root = FF_MODELS_DIR;
#endif
  const std::string bundled = root + "/tiny-shapes";
  if (!root.empty() && std::ifstream(bundled + "/config.json")) return bundled;
  const std::string dir = "/tmp/ff-cuda-engine-model-" + std::to_string(getpid());
  fftools::write_random_model(dir, fftools::bench_model_spec());
  return dir;
}

// The first words of the model's vocabulary (lines 2.. of vocab.txt): a prompt it accepts.
std::string somePrompt(const std::string& dir, int words) {
  std::ifstream in(dir + "/vocab.txt");
  std::string line, prompt;
  for (int i = 0; std::getline(in, line) && i < words + 2; ++i)
    if (i >= 2) prompt += (prompt.empty() ? "" : " ") + line;
  return prompt;
}

std::vector<float> framesAsFloats(const ff::GenerateResult& r) { return std::vector<float>(r.frames.begin(), r.frames.end()); }

// Where the engine looks for its CUDA library (model/backend.cpp): beside this binary, unless
// FRAMEFLEET_CUDA_ENGINE names it.
std::string engineLibrary() {
  if (const char* env = std::getenv("FRAMEFLEET_CUDA_ENGINE")) return env;
  char exe[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string dir = n > 0 ? std::string(exe, size_t(n)) : "./x";
  return dir.substr(0, dir.rfind('/')) + "/framefleet_cuda_engine.so";
}

void run() {
  if (!std::ifstream(engineLibrary())) {
    std::printf("engine checks: SKIPPED (no %s; bench/gpu/engine_pack.sh packs the library with this binary)\n",
                engineLibrary().c_str());
    return;
  }
  const std::string dir = modelDir();
  std::printf("engine on the GPU: model %s\n", dir.c_str());
  const ff::CudaStatus& status = ff::cuda_status();
  if (!status.available) {
    verdict("engine: CUDA engine library and device", false, status.reason);
    return;
  }
  std::printf("engine: %s, %.1f GiB\n", ff::backend_label(ff::BackendKind::Cuda).c_str(), status.memory_bytes / double(1u << 30));
  ff::LoadOptions cpuOptions, gpuOptions;
  cpuOptions.backend = "cpu";
  gpuOptions.backend = "cuda";
  auto cpu = ff::Model::load(dir, cpuOptions);
  auto gpu = ff::Model::load(dir, gpuOptions);
  verdict("engine: backend cuda loads on the GPU", gpu->backend() == ff::BackendKind::Cuda);
  {
    ff::LoadOptions autoOptions;
    autoOptions.backend = "auto";
    verdict("engine: backend auto picks the GPU", ff::Model::load(dir, autoOptions)->backend() == ff::BackendKind::Cuda);
  }

  // One evaluation, same x, t and text, CPU (fp32 linears) against GPU (bf16 linears).
  const ff::ModelConfig& cfg = cpu->config();
  const ff::LatentShape s = ff::latent_shape(cfg, cfg.video.width, cfg.video.height, cfg.video.frames);
  ff::Dit& net = cpu->dit(ff::WeightsKind::Dit);
  const ff::DitText cond = net.prepare_text(cpu->encode_prompt(somePrompt(dir, 3)));
  const ff::DitText uncond = net.prepare_text(cpu->encode_prompt(""));
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(s.numel()));
  for (float& v : x) v = normal(rng);
  const double t = 0.7;
  ff::GpuDit gdit(net, cfg);
  gdit.begin(cond, &uncond);
  ff::Arena arena;
  const char* kinds[] = {"dense", "sage", "sla"};
  for (int kind = 0; kind < 3; ++kind) {
    ff::Knobs k;
    k.attention = static_cast<ff::AttentionKind>(kind);
    k.sla_top_k = 0.1;
    // SLA's block map is a discrete top-k: the GPU's bf16 rounding of q and k flips near-tied key
    // blocks against the CPU's fp32 (in the second block, whose input the first one's rounding
    // moved), and how many flip depends on the random latent drawn above. Measured on an H200
    // over eight runs: relL2 1.9e-2 to 7.5e-2, cos >= 0.997; the kernels' own SLA checks, with
    // the CPU's block map compared exactly, stay at 1e-2.
    const double maxRel = kind == 0 ? 3e-2 : kind == 1 ? 6e-2 : 1e-1, minCos = kind == 0 ? 0.9995 : kind == 1 ? 0.998 : 0.995;
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<float> ref(x.size()), got(x.size());
      net.forward(k, x.data(), s, t, pass == 0 ? cond : uncond, ref.data(), arena);
      gdit.forward(k, x.data(), s, t, pass == 0, got.data(), nullptr);
      check(std::string("engine step ") + kinds[kind] + (pass == 0 ? " cond" : " uncond") + " vs CPU", got, ref, maxRel, minCos);
      if (kind == 0 && pass == 0) {
        // The second run of a configuration is captured and replayed as a graph; the third
        // replays it; FRAMEFLEET_CUDA_GRAPHS=0 runs eagerly. All must agree with the first.
        std::vector<float> again(x.size()), replay(x.size()), eager(x.size());
        const bool firstGraphed = gdit.last_step_graphed();
        gdit.forward(k, x.data(), s, t, true, again.data(), nullptr);
        const bool captured = gdit.last_step_graphed();
        gdit.forward(k, x.data(), s, t, true, replay.data(), nullptr);
        verdict("engine step dense: eager first, then graph launches", !firstGraphed && captured && gdit.last_step_graphed());
        setenv("FRAMEFLEET_CUDA_GRAPHS", "0", 1);
        gdit.forward(k, x.data(), s, t, true, eager.data(), nullptr);
        unsetenv("FRAMEFLEET_CUDA_GRAPHS");
        check("engine step dense: graph capture run vs eager", again, got, 1e-6, 0.999999);
        check("engine step dense: graph replay vs eager", replay, got, 1e-6, 0.999999);
        check("engine step dense: FRAMEFLEET_CUDA_GRAPHS=0 vs first", eager, got, 1e-6, 0.999999);
      }
    }
  }

  // The VAE decoder on the GPU against the CPU's, both fp32 (only the order of the sums differs),
  // at the model's latent shape and at one off the 16-position tiles.
  {
    const ff::VaeDecoder& cpuVae = cpu->vae();
    const ff::GpuVae gvae(cpu->vae_weights(), cfg.vae);
    ff::LatentShape odd = s;
    odd.frames = 3;
    odd.height = 5;
    odd.width = 7;
    for (const ff::LatentShape& shape : {s, odd}) {
      std::vector<float> z(size_t(shape.numel()));
      for (float& v : z) v = normal(rng);
      const ff::Tensor ref = cpuVae.decode(z.data(), shape);
      const ff::Tensor got = gvae.decode(z.data(), shape);
      const bool same = got.shape() == ref.shape();
      verdict("engine VAE decode shape, latent " + std::to_string(shape.frames) + "x" + std::to_string(shape.height) + "x" +
                  std::to_string(shape.width), same);
      if (same)
        check("engine VAE decode vs CPU, latent " + std::to_string(shape.frames) + "x" + std::to_string(shape.height) + "x" +
                  std::to_string(shape.width),
              std::vector<float>(got.data(), got.data() + got.numel()), std::vector<float>(ref.data(), ref.data() + ref.numel()),
              1e-4, 0.999999);
    }
  }

  // The distilled student's evaluations at the rcm sampler's first and a late time, dense, under
  // the dense step's bars: the generation check below is loose, this one is not.
  if (cpu->has_student()) {
    ff::Dit& snet = cpu->dit(ff::WeightsKind::Student);
    const ff::DitText scond = snet.prepare_text(cpu->encode_prompt(somePrompt(dir, 3)));
    ff::GpuDit sgdit(snet, cfg);
    sgdit.begin(scond, nullptr);
    for (const double ts : {1.0, 0.3}) {
      ff::Knobs k;
      std::vector<float> ref(x.size()), got(x.size());
      snet.forward(k, x.data(), s, ts, scond, ref.data(), arena);
      sgdit.forward(k, x.data(), s, ts, true, got.data(), nullptr);
      char name[80];
      std::snprintf(name, sizeof name, "engine step student t %.1f vs CPU", ts);
      check(name, got, ref, 3e-2, 0.9995);
    }
  }

  // TeaCache: the first evaluation runs the blocks, the second (a nearby t, the largest
  // threshold) reuses the cached residual, on both paths.
  {
    ff::Knobs k;
    ff::TeaCache cpuCache(10.0, cfg.teacache_coefficients, 3), gpuCache(10.0, cfg.teacache_coefficients, 3);
    gdit.begin(cond, &uncond);
    for (int step = 0; step < 2; ++step) {
      const double ts = step == 0 ? 0.7 : 0.69;
      std::vector<float> ref(x.size()), got(x.size());
      net.forward(k, x.data(), s, ts, cond, ref.data(), arena, &cpuCache);
      gdit.forward(k, x.data(), s, ts, true, got.data(), &gpuCache);
      check(std::string("engine TeaCache evaluation ") + std::to_string(step) + " vs CPU", got, ref, 3e-2, 0.9995);
    }
    verdict("engine TeaCache: same skips as the CPU", cpuCache.skipped() == gpuCache.skipped(),
            "cpu " + std::to_string(cpuCache.skipped()) + " gpu " + std::to_string(gpuCache.skipped()));
  }

  // Short generations through Model::generate: frames, NFE, and an abort within a step.
  auto none = [](const char*, int, int) {};
  for (const bool student : {false, true}) {
    if (student && !cpu->has_student()) continue;
    ff::Request r;
    r.prompt = somePrompt(dir, 3);
    r.seed = 11;
    r.knobs.steps = 4;
    if (student) {
      r.knobs.weights = ff::WeightsKind::Student;
      r.knobs.sampler = ff::SamplerKind::Rcm;
    }
    const ff::GenerateResult a = cpu->generate(r, none, nullptr);
    const ff::GenerateResult b = gpu->generate(r, none, nullptr);
    const std::string what = student ? "student rcm" : "dit euler+cfg";
    // bf16 activations on the GPU against fp32 on the CPU, compounded over 4 steps and the
    // decoder; the rcm sampler re-noises between steps, which carries each step's difference on.
    // One evaluation agrees to ~3e-3 (the step checks above, the student's included), but the
    // frames' distance moves with any change of rounding anywhere in the forward: dit 1.7e-2 /
    // 4.4e-2 / 2.9e-2 / 2.8e-2 and the student 3.8e-2 (run 4's export) / 5.3e-2 / 7.1e-2 / 1.2e-1
    // (run 5's) over builds whose dit evaluations stayed at 3e-3 (the last: a row-norm kernel that
    // sums its squares in another order; its student evaluations, checked above, read 3.1e-3 and
    // 3.6e-3 on an H200). Two fp32 CPU paths (avx2 and scalar kernels) agree
    // on these frames to 1.6e-4: the spread is the bf16 rounding's, which rCM's re-noising
    // amplifies. The student's bars sit below what a wrong schedule does on the CPU (3 rcm steps
    // against 4: relL2 0.23, cos 0.973; the dit's Euler generation against the student's: 0.76,
    // 0.648) and leave the rounding to the step checks.
    const double maxRel = student ? 2e-1 : 1e-1, minCos = student ? 0.985 : 0.995;
    check("engine generate 4 steps " + what + " frames vs CPU", framesAsFloats(b), framesAsFloats(a), maxRel, minCos);
    verdict("engine generate " + what + ": same nfe", a.nfe == b.nfe, std::to_string(a.nfe) + " / " + std::to_string(b.nfe));
    std::printf("engine generate %s: denoise cpu %.3f s, gpu %.3f s; decode cpu %.3f s, gpu %.3f s\n", what.c_str(),
                a.timings.denoise, b.timings.denoise, a.timings.decode, b.timings.decode);
  }
  {
    ff::Request r;
    r.prompt = somePrompt(dir, 2);
    r.knobs.steps = 50;
    std::atomic<int> abort{0};
    std::string message;
    try {
      gpu->generate(r, [&](const char* stage, int step, int) {
        if (std::string(stage) == "denoise" && step == 2) abort = 1;
      }, &abort);
    } catch (const ff::Error& e) {
      if (e.code() == ff::ErrorCode::Aborted) message = e.what();
    }
    verdict("engine abort stops within one step", message.find("after 2 of 50") != std::string::npos, message);
  }
}

}  // namespace

// Number of failed checks besides those `report` counted; a CUDA or engine error counts as one.
int engineChecks(EngineReport report) {
  g_report = report;
  try {
    run();
  } catch (const std::exception& e) {
    std::printf("engine: error: %s\n", e.what());
    ++g_engineFailures;
  }
  return g_engineFailures;
}
