#include "model/model.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "sampling/samplers.h"

namespace ff {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::ModelFormat, path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > limit) fail(ErrorCode::ModelFormat, path + ": larger than " + std::to_string(limit) + " bytes");
  return s;
}

uint64_t read_u64_file(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return UINT64_MAX;
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return UINT64_MAX;
  }
}

// What this process may still allocate: the machine's MemAvailable, bounded by the cgroup v2
// limit when one is set (a container's limit, not the node's memory, is what matters in a pod).
uint64_t mem_available_bytes() {
  uint64_t available = UINT64_MAX;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kb;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") {
      available = kb * 1024;
      break;
    }
  const uint64_t limit = read_u64_file("/sys/fs/cgroup/memory.max");
  const uint64_t used = read_u64_file("/sys/fs/cgroup/memory.current");
  if (limit != UINT64_MAX && used != UINT64_MAX) available = std::min(available, limit > used ? limit - used : 0);
  return available;
}

void check_abort(const std::atomic<int>* abort, const std::string& where = "") {
  if (abort && abort->load(std::memory_order_relaxed)) fail(ErrorCode::Aborted, "generation aborted" + where);
}

void check_finite(const float* x, int64_t n, const std::string& what) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) fail(ErrorCode::Numeric, what + ": non-finite value at element " + std::to_string(i));
}

}  // namespace

namespace {

// A generation allocates and frees the same large buffers every time (VAE activations of tens of
// MB, per-layer scratch). glibc serves blocks above its mmap threshold with fresh mappings and
// trims freed heap tops, so each generation would fault in and zero those pages again (about
// a tenth of a turbo generation's time). Keeping such blocks on the heap and the heap untrimmed
// makes the second and later generations reuse resident memory; the process keeps its peak
// working set, which a worker holding a loaded model needs anyway.
void keep_large_blocks_resident() {
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    return true;
  }();
  (void)done;
}

}  // namespace

std::shared_ptr<Model> Model::load(const std::string& dir, const LoadOptions& options) {
  keep_large_blocks_resident();
  std::shared_ptr<Model> m(new Model());
  m->dir_ = dir;
  m->options_ = options;
  const std::string cfg_path = dir + "/config.json";
  m->config_ = parse_model_config(cfg_path, read_text(cfg_path, 1 << 20));
  const ModelConfig& c = m->config_;
  m->tokenizer_ = std::make_unique<Tokenizer>(dir + "/vocab.txt", c.text.vocab_size, c.text.max_tokens);
  m->text_ = std::make_unique<WeightSet>(dir + "/text_encoder.safetensors", "text_encoder.safetensors", text_encoder_params(c.text));
  const auto dit_specs = dit_params(c.dit, c.text);
  m->dit_w_ = std::make_unique<WeightSet>(dir + "/dit.safetensors", "dit.safetensors", dit_specs);
  if (file_exists(dir + "/student.safetensors"))
    m->student_ = std::make_unique<WeightSet>(dir + "/student.safetensors", "student.safetensors", dit_specs);
  m->vae_w_ = std::make_unique<WeightSet>(dir + "/vae_decoder.safetensors", "vae_decoder.safetensors", vae_params(c.vae));
  m->choose_backend();
  return m;
}

void Model::choose_backend() {
  std::string choice = options_.backend, where = "backend";
  if (choice.empty()) {
    const char* env = std::getenv("FRAMEFLEET_BACKEND");
    choice = env && *env ? env : "auto";
    if (env && *env) where = "FRAMEFLEET_BACKEND";
  }
  const BackendKind asked = parse_backend(choice, where);
  if (asked == BackendKind::Cpu) return;
  const CudaStatus& cuda = cuda_status();
  const std::string refused = where + " 'cuda': ";
  if (!cuda.available) {
    if (asked == BackendKind::Cuda) fail(ErrorCode::BadRequest, refused + cuda.reason);
    if (cuda.built) backend_note_ = cuda.reason;
    return;
  }
  // The GPU copies are made now, so a device that cannot hold them fails the load, not a request.
  try {
    for (WeightsKind which : {WeightsKind::Dit, WeightsKind::Student}) {
      if (which == WeightsKind::Student && !student_) continue;
      (which == WeightsKind::Student ? gpu_student_ : gpu_dit_) = std::make_unique<GpuDit>(dit(which), config_);
    }
    gpu_vae_ = std::make_unique<GpuVae>(vae_weights(), config_.vae);
  } catch (const Error& e) {
    // A model whose shapes the CUDA kernels do not run stays on the CPU under auto.
    if (asked == BackendKind::Cuda || e.code() != ErrorCode::BadRequest) {
      if (e.code() == ErrorCode::BadRequest) fail(ErrorCode::BadRequest, refused + e.what());
      throw;
    }
    gpu_dit_.reset();
    gpu_student_.reset();
    gpu_vae_.reset();
    backend_note_ = e.what();
    return;
  }
  backend_ = BackendKind::Cuda;
}

GpuDit* Model::gpu_dit(WeightsKind which) const {
  return which == WeightsKind::Student ? gpu_student_.get() : gpu_dit_.get();
}

uint64_t Model::weight_bytes() const {
  uint64_t n = text_->file_bytes() + dit_w_->file_bytes() + vae_w_->file_bytes();
  return student_ ? n + student_->file_bytes() : n;
}

void Model::prepare(WeightSet& w, double* seconds) {
  if (w.prepared()) return;
  double t0 = now_seconds();
  w.prepare();
  if (seconds) *seconds += now_seconds() - t0;
}

TextContext Model::encode_prompt(const std::string& prompt) {
  prepare(*text_, nullptr);
  return encode_text(*text_, config_.text, tokenizer_->encode(prompt));
}

Dit& Model::dit(WeightsKind which) {
  WeightSet& w = which == WeightsKind::Student ? *student_ : *dit_w_;
  if (which == WeightsKind::Student && !student_) fail(ErrorCode::BadRequest, "weights: the model has no student.safetensors");
  prepare(w, nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<Dit>& slot = which == WeightsKind::Student ? student_dit_ : dit_;
  if (!slot) slot = std::make_unique<Dit>(w, config_);
  return *slot;
}

const WeightSet& Model::vae_weights() {
  prepare(*vae_w_, nullptr);
  return *vae_w_;
}

const VaeDecoder& Model::vae() {
  prepare(*vae_w_, nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  if (!vae_) vae_ = std::make_unique<VaeDecoder>(*vae_w_, config_.vae);
  return *vae_;
}

uint64_t Model::estimate_bytes(const Request& r) const {
  const LatentShape s = latent_shape(config_, r.width, r.height, r.frames);
  const DitConfig& d = config_.dit;
  const uint64_t N = s.tokens(), D = d.dim, F = d.ffn_dim, L = config_.text.max_tokens;
  uint64_t floats = 0;
  floats += 6 * s.numel();                                   // x, noise, v_c, v_u, x0, eps
  floats += N * D + 5 * N * D + N * F + N * d.patch_numel();  // DiT arena
  floats += N * F + F * D;                                    // GEMM packing
  floats += 2 * (2 * d.layers + 1) * L * D;                   // text k/v, two prompts
  return floats * sizeof(float) + VaeDecoder(*vae_w_, config_.vae).peak_bytes(s);
}

GenerateResult Model::generate(Request r, const ProgressFn& progress, const std::atomic<int>* abort) {
  const double t_start = now_seconds();
  resolve_request(config_, has_student(), r);
  require_supported(r.knobs);
  const uint64_t need = estimate_bytes(r);
  const uint64_t limit = options_.memory_limit_bytes ? options_.memory_limit_bytes : mem_available_bytes();
  if (need > limit)
    fail(ErrorCode::OutOfMemory, "the request needs about " + std::to_string(need >> 20) + " MiB of working memory but " +
                                     std::to_string(limit >> 20) + " MiB are available; lower width, height or frames");
  GenerateResult out;
  out.request = r;
  Timings& tm = out.timings;
  const Knobs& k = r.knobs;
  check_abort(abort);

  // Weights are read for the first time here (load only mapped them).
  WeightSet& dit_weights = k.weights == WeightsKind::Student ? *student_ : *dit_w_;
  prepare(*text_, &tm.prepare_weights);
  prepare(dit_weights, &tm.prepare_weights);
  prepare(*vae_w_, &tm.prepare_weights);
  Dit& net = dit(k.weights);
  // On the GPU every linear runs as bf16 on cuBLAS (docs/CUDA.md "The engine on the GPU").
  GpuDit* gpu = gpu_dit(k.weights);
  if (!gpu) net.prepare_linears(k.linear);
  check_abort(abort);

  double t0 = now_seconds();
  const bool cfg = k.sampler == SamplerKind::Euler && k.guidance_scale != 1.0;
  progress("textEncode", 0, cfg ? 2 : 1);
  DitText cond = net.prepare_text(encode_prompt(r.prompt));
  DitText uncond;
  if (cfg) uncond = net.prepare_text(encode_prompt(r.negative_prompt));
  tm.text_encode = now_seconds() - t0;
  progress("textEncode", cfg ? 2 : 1, cfg ? 2 : 1);
  check_abort(abort);

  t0 = now_seconds();
  const LatentShape s = latent_shape(config_, r.width, r.height, r.frames);
  Arena arena;
  NoiseStream stream(r.seed);
  NoiseFn noise = [&](float* out, int64_t n) { stream.fill(out, n); };
  // TeaCache: one cache per CFG pass, each seeing one evaluation per step.
  std::unique_ptr<TeaCache> cache_cond, cache_uncond;
  if (k.tea_cache > 0) {
    cache_cond = std::make_unique<TeaCache>(k.tea_cache, config_.teacache_coefficients, k.steps);
    cache_uncond = std::make_unique<TeaCache>(k.tea_cache, config_.teacache_coefficients, k.steps);
  }
  std::unique_lock<std::mutex> gpu_lock;
  if (gpu) {
    gpu_lock = std::unique_lock<std::mutex>(gpu_mu_);
    gpu->begin(cond, cfg ? &uncond : nullptr);
  }
  int steps_done = 0;
  auto where = [&] { return " after " + std::to_string(steps_done) + " of " + std::to_string(k.steps) + " denoising steps"; };
  VelocityFn velocity = [&](const float* x, double t, Guidance which, float* v) {
    check_abort(abort, where());
    const bool is_cond = which == Guidance::Cond;
    TeaCache* cache = is_cond ? cache_cond.get() : cache_uncond.get();
    if (gpu) return gpu->forward(k, x, s, t, is_cond, v, cache);
    net.forward(k, x, s, t, is_cond ? cond : uncond, v, arena, cache);
  };
  progress("denoise", 0, k.steps);
  StepFn on_step = [&](int step, int total) {
    steps_done = step;
    progress("denoise", step, total);
    check_abort(abort, where());
  };
  SampleResult sample = k.sampler == SamplerKind::Euler
                            ? sample_euler(s.numel(), k.steps, config_.sampling.shift, k.guidance_scale, noise, velocity, on_step)
                            : sample_rcm(s.numel(), k.steps, config_.sampling.sigma_max, noise, velocity, on_step);
  check_finite(sample.x.data(), s.numel(), "denoised latents");
  for (const TeaCache* c : {cache_cond.get(), cache_uncond.get()})
    if (c) out.blocks_skipped += c->skipped();
  // An evaluation whose block stack TeaCache replaced by the cached residual is no function
  // evaluation of the network: NFE counts only the full ones.
  out.nfe = sample.nfe - out.blocks_skipped;
  tm.denoise = now_seconds() - t0;
  check_abort(abort);

  t0 = now_seconds();
  progress("decode", 0, 1);
  // On the GPU backend the decoder runs there too, still under the GPU lock.
  Tensor rgb = gpu ? gpu_vae_->decode(sample.x.data(), s) : vae().decode(sample.x.data(), s);
  if (gpu_lock.owns_lock()) gpu_lock.unlock();
  check_finite(rgb.data(), rgb.numel(), "decoded frames");
  out.frames = to_rgb(rgb);
  out.frame_count = int(rgb.dim(1));
  out.height = int(rgb.dim(2));
  out.width = int(rgb.dim(3));
  tm.decode = now_seconds() - t0;
  progress("decode", 1, 1);
  tm.total = now_seconds() - t_start;
  return out;
}

}  // namespace ff
