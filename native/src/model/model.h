// A loaded model directory (docs/MODEL.md "Files of a model directory") and the generation
// pipeline of one request: tokenize -> text encoder -> sampler over the DiT -> VAE decode.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/config.h"
#include "model/backend.h"
#include "model/dit.h"
#include "model/knobs.h"
#include "model/text_encoder.h"
#include "model/tokenizer.h"
#include "model/vae.h"
#include "model/weights.h"

namespace ff {

struct LoadOptions {
  // Requests whose estimated working memory exceeds this fail with E_OUT_OF_MEMORY before any
  // allocation. 0: the machine's MemAvailable at request time.
  uint64_t memory_limit_bytes = 0;
  // "auto" | "cpu" | "cuda" (model/backend.h); empty: $FRAMEFLEET_BACKEND, else "auto".
  std::string backend;
};

struct Timings {
  double prepare_weights = 0;  // first use of a weight file: conversion and finiteness check
  double text_encode = 0, denoise = 0, decode = 0, total = 0;
};

struct GenerateResult {
  std::vector<uint8_t> frames;  // [F, H, W, 3]
  int width = 0, height = 0, frame_count = 0;
  int nfe = 0;  // full DiT evaluations (TeaCache's skipped ones excluded)
  int blocks_skipped = 0;  // sampler evaluations whose block stack TeaCache replaced
  Request request;  // with every default resolved
  Timings timings;
};

// stage is "textEncode" | "denoise" | "decode"; step counts within the stage.
using ProgressFn = std::function<void(const char* stage, int step, int total)>;

class Model {
 public:
  // Maps every file and checks config.json against vocab.txt and the tensors. Weights are not read.
  // Throws Error(ModelFormat) naming the file, tensor and problem.
  static std::shared_ptr<Model> load(const std::string& dir, const LoadOptions& options);

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  bool has_student() const { return student_ != nullptr; }
  uint64_t weight_bytes() const;
  // Where the denoiser runs (Cpu or Cuda, never Auto) and, when auto chose the CPU on a build
  // with CUDA, why the GPU was not used (empty otherwise).
  BackendKind backend() const { return backend_; }
  const std::string& backend_note() const { return backend_note_; }

  // Runs a request on the calling thread. `abort` (nullable) is polled before every DiT evaluation
  // and after every step: when nonzero the call throws Error(Aborted).
  GenerateResult generate(Request request, const ProgressFn& progress, const std::atomic<int>* abort);

  // Estimated peak working memory of a resolved request, in bytes.
  uint64_t estimate_bytes(const Request& request) const;

  // Stages, for tests and parity checks. Each prepares its weights on first use.
  TextContext encode_prompt(const std::string& prompt);
  Dit& dit(WeightsKind which);
  const VaeDecoder& vae();
  // The decoder's weights, prepared (GpuVae reads them).
  const WeightSet& vae_weights();

 private:
  Model() = default;
  void prepare(WeightSet& w, double* seconds);
  // Resolves options_.backend / FRAMEFLEET_BACKEND and, for CUDA, uploads the DiT(s).
  void choose_backend();
  GpuDit* gpu_dit(WeightsKind which) const;

  std::string dir_;
  ModelConfig config_;
  LoadOptions options_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<WeightSet> text_, dit_w_, student_, vae_w_;
  std::mutex mu_;  // guards lazy construction below
  std::unique_ptr<Dit> dit_, student_dit_;
  std::unique_ptr<VaeDecoder> vae_;
  BackendKind backend_ = BackendKind::Cpu;
  std::string backend_note_;
  std::unique_ptr<GpuDit> gpu_dit_, gpu_student_;
  std::unique_ptr<GpuVae> gpu_vae_;  // the decoder on the GPU, with the DiT
  std::mutex gpu_mu_;  // one generation at a time on the GPU copies (their buffers are shared)
};

}  // namespace ff
