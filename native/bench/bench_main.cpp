// framefleet_bench: kernel and model benchmarks (DESIGN section 6), the load measurement and
// the random-model writer the TypeScript tests use.
//   framefleet_bench [--json] [--quick]          GEMM, attention, DiT forward and accel rows
//       [--dit-table]                            plus the DiT forward per knob combination at
//                                                576 and 4096 tokens (minutes: dense at 4096)
//   framefleet_bench load [--bytes N] [--dir D]    mmap load vs read+parse of a ~N-byte checkpoint
//   framefleet_bench profile DIR [--profile baseline|turbo|both] [--steps N]
//                                                per-op time of whole generations on the model in
//                                                DIR (FRAMEFLEET_PROFILE tables), VAE per layer
//   framefleet_bench make-model DIR [--preset tiny|bench] [--dtype F32|F16|BF16] [--no-student]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_accel.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"
#include "model/model.h"
#include "model/profile.h"
#include "random_model.h"

#ifdef FF_HAVE_OPENBLAS
#include <cblas.h>
#endif
#ifdef FF_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace {

struct Row {
  std::string op, shape, variant;
  double seconds = 0, gflops = 0, speedup = 1;
  bool has_error = false;
  double rel_l2 = 0, cosine = 1;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median of `reps` timed calls after one warm-up call.
double median_seconds(int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    double t0 = now();
    fn();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_values(size_t n, uint64_t seed) { return fftools::random_uniform(n, seed); }

void set_error(Row& r, const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0, dot = 0, oo = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    num += (double(out[i]) - ref[i]) * (double(out[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
    oo += double(out[i]) * out[i];
    dot += double(out[i]) * ref[i];
  }
  r.has_error = true;
  r.rel_l2 = std::sqrt(num / den);
  r.cosine = dot / std::sqrt(den * oo);
}

std::string json_row(const Row& r) {
  std::ostringstream o;
  o.precision(6);
  o << "{\"op\":\"" << r.op << "\",\"shape\":\"" << r.shape << "\",\"variant\":\"" << r.variant << "\",\"seconds\":" << r.seconds
    << ",\"gflops_or_gops\":" << r.gflops << ",\"speedup\":" << r.speedup << ",\"error\":";
  if (r.has_error) o << "{\"relL2\":" << r.rel_l2 << ",\"cosine\":" << r.cosine << "}";
  else o << "null";
  o << "}";
  return o.str();
}

// GEMM C[M,N] = A[M,K] · B[N,K]ᵀ: the engine's variants, OpenBLAS and oneDNN, against the naive
// double-precision reference (speedup is over the reference; error is against it).
void gemm_rows(int64_t M, int64_t N, int64_t K, bool time_reference, std::vector<Row>& rows) {
  auto A = random_values(M * K, 1), B = random_values(N * K, 2);
  std::vector<float> ref(M * N), out(M * N);
  ff::GemmArgs g{M, N, K, A.data(), K, B.data(), K, ref.data(), N, nullptr, false};
  const std::string shape = "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
  const double flops = 2.0 * M * N * K;
  double t0 = now();
  ff::gemm_nt_reference(g);
  double ref_seconds = now() - t0;
  if (time_reference) rows.push_back(Row{"gemm", shape, "reference", ref_seconds, flops / ref_seconds / 1e9, 1, true, 0, 1});
  const int reps = flops > 1e9 ? 7 : 21;
  // Candidates run interleaved (one call of each per round), so a change in machine load hits
  // every row alike; each row reports its median.
  struct Candidate {
    std::string variant;
    std::function<void()> fn;
    std::vector<double> times;
  };
  std::vector<Candidate> candidates;
  g.C = out.data();
  for (ff::Variant v : ff::gemm_variants()) {
    if (ff::variant_score(v) == 0) continue;
    if (v == ff::Variant::Scalar && flops > 1e9) continue;  // minutes at 1024^3; its tests cover it
    candidates.push_back({std::string("ff-") + ff::variant_name(v), [&g, v] { ff::gemm_nt_variant(v, g); }, {}});
  }
  // bf16: the weight is packed once (as at model load); activations are rounded inside the call.
  ff::Bf16PackedWeight bf16_weight;
  if (ff::gemm_bf16_available()) {
    bf16_weight = ff::pack_bf16_weight(B.data(), N, K);
    candidates.push_back({"ff-bf16", [&] { ff::gemm_bf16(A.data(), M, bf16_weight, nullptr, out.data()); }, {}});
  }
#ifdef FF_HAVE_OPENBLAS
  openblas_set_num_threads(ff::ThreadPool::global().size());
  candidates.push_back({"openblas", [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, out.data(), N); }, {}});
#endif
#ifdef FF_HAVE_DNNL
  candidates.push_back({"onednn", [&] { dnnl_sgemm('N', 'T', M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, out.data(), N); }, {}});
#endif
  for (Candidate& c : candidates) c.fn();  // warm-up
  for (int rep = 0; rep < reps; ++rep)
    for (Candidate& c : candidates) {
      double t0 = now();
      c.fn();
      c.times.push_back(now() - t0);
    }
  for (Candidate& c : candidates) {
    std::fill(out.begin(), out.end(), 0.f);
    c.fn();
    std::sort(c.times.begin(), c.times.end());
    Row r{"gemm", shape, c.variant};
    r.seconds = c.times[c.times.size() / 2];
    r.gflops = flops / r.seconds / 1e9;
    r.speedup = ref_seconds / r.seconds;
    set_error(r, out, ref);
    rows.push_back(r);
  }
}

void attention_rows(int64_t tokens, int64_t heads, int64_t hd, std::vector<Row>& rows) {
  const int64_t D = heads * hd;
  auto q = random_values(tokens * D, 5), k = random_values(tokens * D, 6), v = random_values(tokens * D, 7);
  std::vector<float> ref(tokens * D), out(tokens * D);
  ff::AttentionArgs a{tokens, tokens, heads, hd, q.data(), D, k.data(), D, v.data(), D, ref.data(), D, nullptr, 1.0f / std::sqrt(float(hd))};
  const std::string shape = "N=" + std::to_string(tokens) + " heads=" + std::to_string(heads) + " hd=" + std::to_string(hd);
  const double flops = 4.0 * tokens * tokens * D;
  double t0 = now();
  ff::attention_reference(a);
  double ref_seconds = now() - t0;
  rows.push_back(Row{"attention", shape, "reference", ref_seconds, flops / ref_seconds / 1e9, 1, true, 0, 1});
  a.out = out.data();
  for (ff::Variant var : {ff::Variant::Scalar, ff::Variant::Avx2, ff::Variant::Avx512}) {
    if (ff::variant_score(var) == 0) continue;
    Row r{"attention", shape, std::string("dense-") + ff::variant_name(var)};
    r.seconds = median_seconds(10, [&] { ff::attention_dense_variant(var, a); });
    r.gflops = flops / r.seconds / 1e9;
    r.speedup = ref_seconds / r.seconds;
    set_error(r, out, ref);
    rows.push_back(r);
  }
}

// One DiT forward of the bench model (dim 384, 12 layers, 6 heads, 576 tokens) per knob set;
// speedup and error are against the fp32 dense forward of the same run.
void dit_rows(bool quick, std::vector<Row>& rows) {
  char tmpl[] = "/tmp/ff-bench-dit-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  fftools::write_random_model(dir, fftools::bench_model_spec());
  auto model = ff::Model::load(dir, {});
  const ff::ModelConfig& c = model->config();
  ff::Dit& dit = model->dit(ff::WeightsKind::Dit);
  ff::LatentShape s = ff::latent_shape(c, c.video.width, c.video.height, c.video.frames);
  ff::DitText text = dit.prepare_text(model->encode_prompt("a red circle moving left"));
  auto x = random_values(s.numel(), 9);
  const std::string shape = "dim=" + std::to_string(c.dit.dim) + " layers=" + std::to_string(c.dit.layers) + " heads=" +
                            std::to_string(c.dit.heads) + " tokens=" + std::to_string(s.tokens());
  const double N = double(s.tokens()), D = c.dit.dim, F = c.dit.ffn_dim, L = c.text.max_tokens;
  const double flops = c.dit.layers * (2 * N * (6 * D * D + 2 * D * F) + 4 * N * N * D + 4 * N * L * D);
  std::vector<float> ref(s.numel()), out(s.numel());
  ff::Arena arena;
  ff::Knobs dense;
  Row base{"dit_forward", shape, "dense+fp32"};
  base.seconds = median_seconds(quick ? 1 : 3, [&] { dit.forward(dense, x.data(), s, 0.7, text, ref.data(), arena); });
  base.gflops = flops / base.seconds / 1e9;
  rows.push_back(base);
  struct Variant {
    const char* name;
    ff::AttentionKind attention;
    ff::LinearKind linear;
  };
  for (Variant v : {Variant{"sage+fp32", ff::AttentionKind::Sage, ff::LinearKind::Fp32}, Variant{"dense+w8a8", ff::AttentionKind::Dense, ff::LinearKind::W8a8},
                    Variant{"sla0.1+w8a8", ff::AttentionKind::Sla, ff::LinearKind::W8a8},
                    Variant{"dense+bf16", ff::AttentionKind::Dense, ff::LinearKind::Bf16}}) {
    if (!ff::knob_supported(v.attention) || !ff::knob_supported(v.linear)) continue;
    ff::Knobs k;
    k.attention = v.attention;
    k.linear = v.linear;
    dit.prepare_linears(k.linear);
    Row r{"dit_forward", shape, v.name};
    r.seconds = median_seconds(quick ? 1 : 3, [&] { dit.forward(k, x.data(), s, 0.7, text, out.data(), arena); });
    r.gflops = flops / r.seconds / 1e9;
    r.speedup = base.seconds / r.seconds;
    set_error(r, out, ref);
    rows.push_back(r);
  }
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}

std::string machine_json() {
  std::ostringstream o;
  o << "{\"cpu\":\"" << ff::cpu_features().brand << "\",\"threads\":" << ff::ThreadPool::global().size() << ",\"features\":[";
  auto f = ff::cpu_feature_names();
  for (size_t i = 0; i < f.size(); ++i) o << (i ? "," : "") << "\"" << f[i] << "\"";
  o << "],\"openblas\":" <<
#ifdef FF_HAVE_OPENBLAS
      "true"
#else
      "false"
#endif
    << ",\"onednn\":" <<
#ifdef FF_HAVE_DNNL
      "true"
#else
      "false"
#endif
    << "}";
  return o.str();
}

int run_kernels(bool json, bool quick, bool dit_table) {
  std::vector<Row> rows;
  gemm_rows(1024, 1024, 1024, true, rows);
  if (!quick) {
    gemm_rows(576, 384, 384, true, rows);
    gemm_rows(576, 1536, 384, true, rows);
    gemm_rows(576, 384, 1536, true, rows);
  }
  attention_rows(576, 6, 64, rows);
  dit_rows(quick, rows);
  std::vector<ffbench::AccelRow> accel = ffbench::accel_rows(quick);
  if (dit_table) {
    std::vector<ffbench::AccelRow> table = ffbench::accel_forward_rows(quick);
    accel.insert(accel.end(), table.begin(), table.end());
  }
  if (json) {
    std::printf("{\"machine\":%s,\"rows\":[", machine_json().c_str());
    for (size_t i = 0; i < rows.size(); ++i) std::printf("%s%s", i ? "," : "", json_row(rows[i]).c_str());
    for (const auto& r : accel) std::printf(",%s", ffbench::accel_row_json(r).c_str());
    std::printf("]}\n");
    return 0;
  }
  std::printf("%-12s %-36s %-14s %12s %10s %9s %10s %9s\n", "op", "shape", "variant", "seconds", "GFLOP/s", "speedup", "relL2", "cosine");
  for (const Row& r : rows)
    std::printf("%-12s %-36s %-14s %12.6f %10.2f %9.2f %10.2e %9.6f\n", r.op.c_str(), r.shape.c_str(), r.variant.c_str(), r.seconds, r.gflops,
                r.speedup, r.rel_l2, r.cosine);
  for (const auto& r : accel)
    std::printf("%-12s %-36s %-14s %12.6f %10.2f %9.2f %10.2e %9.6f\n", r.op.c_str(), r.shape.c_str(), r.variant.c_str(), r.seconds,
                r.gflops_or_gops, r.speedup, r.rel_l2, r.cosine);
  return 0;
}

// Resident set size in bytes (/proc/self/statm).
uint64_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return uint64_t(resident) * uint64_t(sysconf(_SC_PAGESIZE));
}

// Evicts a file from the page cache so both loaders start cold.
void drop_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// read() the whole file, parse the header, copy every tensor into its own fp32 buffer: what a
// loader without mmap does.
double read_and_parse(const std::string& path) {
  double t0 = now();
  int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st;
  fstat(fd, &st);
  std::vector<uint8_t> bytes(size_t(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n <= 0) break;
    got += size_t(n);
  }
  ::close(fd);
  auto tensors = ff::parse_safetensors(path, bytes.data(), bytes.size());
  std::vector<ff::AlignedBuffer> owned;
  for (const auto& t : tensors) {
    owned.push_back(ff::aligned_floats(size_t(ff::shape_numel(t.shape))));
    ff::convert_to_f32(path, t, owned.back().get());
  }
  return now() - t0;
}

int run_load(uint64_t bytes, std::string dir) {
  if (dir.empty()) {
    char tmpl[] = "/tmp/ff-bench-load-XXXXXX";
    dir = mkdtemp(tmpl);
    std::fprintf(stderr, "writing a random model of about %llu bytes to %s\n", (unsigned long long)bytes, dir.c_str());
    fftools::write_random_model(dir, fftools::sized_model_spec(bytes));
  }
  const std::string dit = dir + "/dit.safetensors";
  struct stat st;
  ::stat(dit.c_str(), &st);
  const double file_bytes = double(st.st_size);
  std::ostringstream o;
  o.precision(6);
  o << "{\"dir\":\"" << dir << "\",\"dit_bytes\":" << uint64_t(file_bytes);
  for (const char* cache : {"cold", "warm"}) {
    const bool cold = std::strcmp(cache, "cold") == 0;
    if (cold) drop_cache(dit);
    uint64_t rss0 = rss_bytes();
    double t0 = now();
    auto model = ff::Model::load(dir, {});
    double load_s = now() - t0;
    uint64_t rss1 = rss_bytes();
    double touched_t0 = now();
    model->dit(ff::WeightsKind::Dit);  // touches every weight (finiteness check)
    double touch_s = now() - touched_t0;
    uint64_t rss2 = rss_bytes();
    model.reset();
    if (cold) drop_cache(dit);
    double read_s = read_and_parse(dit);
    o << ",\"" << cache << "\":{\"mmap_load_seconds\":" << load_s << ",\"rss_growth_bytes\":" << int64_t(rss1 - rss0)
      << ",\"rss_growth_fraction\":" << double(int64_t(rss1 - rss0)) / file_bytes << ",\"first_touch_seconds\":" << touch_s
      << ",\"rss_growth_after_touch_fraction\":" << double(int64_t(rss2 - rss0)) / file_bytes << ",\"read_parse_seconds\":" << read_s
      << ",\"load_speedup\":" << read_s / load_s << "}";
  }
  o << "}";
  std::printf("%s\n", o.str().c_str());
  return 0;
}

int make_model(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: framefleet_bench make-model DIR [--preset tiny|bench] [--dtype F32|F16|BF16] [--no-student]\n");
    return 2;
  }
  fftools::RandomModelSpec spec = fftools::tiny_model_spec();
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--preset" && i + 1 < argc) {
      std::string p = argv[++i];
      if (p == "bench") spec = fftools::bench_model_spec();
      else if (p != "tiny") return std::fprintf(stderr, "unknown preset %s\n", p.c_str()), 2;
    } else if (a == "--dtype" && i + 1 < argc) {
      std::string d = argv[++i];
      spec.dtype = d == "F16" ? ff::DType::F16 : d == "BF16" ? ff::DType::BF16 : ff::DType::F32;
    } else if (a == "--no-student") {
      spec.student = false;
    } else {
      return std::fprintf(stderr, "unknown argument %s\n", a.c_str()), 2;
    }
  }
  fftools::write_random_model(argv[2], spec);
  return 0;
}

// One untimed generation, then one profiled: per-op table and the stage timings.
void profile_generation(ff::Model& model, const char* title, ff::Request r) {
  auto quiet = [](const std::string&, int, int) {};
  ff::Request warm = r;
  warm.knobs.steps = 1;
  model.generate(warm, quiet, nullptr);
  ff::profile::enable(true);
  ff::profile::reset();
  ff::GenerateResult g = model.generate(r, quiet, nullptr);
  ff::profile::enable(false);
  std::printf("\n%s: total %.3f s = text %.3f + denoise %.3f + decode %.3f (nfe %d)\n", title, g.timings.total,
              g.timings.text_encode, g.timings.denoise, g.timings.decode, g.nfe);
  ff::profile::report(stdout, "  per op (summed over the run)");
}

int run_profile(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: framefleet_bench profile DIR [--profile baseline|turbo|both] [--steps N]\n"), 2;
  std::string which = "both";
  int steps = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--profile") == 0) which = argv[i + 1];
    else if (std::strcmp(argv[i], "--steps") == 0) steps = std::atoi(argv[i + 1]);
  }
  auto model = ff::Model::load(argv[2], {});
  ff::Request r;
  r.prompt = "a red circle moving left on a black background";
  r.seed = 1;
  if (which == "baseline" || which == "both") {
    ff::Request b = r;
    b.knobs.steps = steps > 0 ? steps : 2;
    profile_generation(*model, "baseline", b);
  }
  if (which == "turbo" || which == "both") {
    ff::Request t = r;
    t.knobs.weights = ff::WeightsKind::Student;
    t.knobs.sampler = ff::SamplerKind::Rcm;
    t.knobs.steps = steps > 0 ? std::min(steps, 4) : 4;
    t.knobs.guidance_scale = 1.0;
    t.knobs.attention = ff::AttentionKind::Sla;
    t.knobs.sla_top_k = 0.1;
    t.knobs.linear = ff::LinearKind::W8a8;
    profile_generation(*model, "turbo", t);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1 && std::strcmp(argv[1], "make-model") == 0) return make_model(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "profile") == 0) return run_profile(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "load") == 0) {
      uint64_t bytes = uint64_t(1) << 30;
      std::string dir;
      for (int i = 2; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--bytes") == 0) bytes = std::strtoull(argv[i + 1], nullptr, 10);
        if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
      }
      return run_load(bytes, dir);
    }
    bool json = false, quick = false, dit_table = false;
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--json") == 0) json = true;
      else if (std::strcmp(argv[i], "--quick") == 0) quick = true;
      else if (std::strcmp(argv[i], "--dit-table") == 0) dit_table = true;
      else return std::fprintf(stderr, "unknown argument %s (see the header of bench_main.cpp)\n", argv[i]), 2;
    }
    return run_kernels(json, quick, dit_table);
  } catch (const ff::Error& e) {
    std::fprintf(stderr, "%s: %s\n", ff::error_code_name(e.code()), e.what());
    return 1;
  }
}
