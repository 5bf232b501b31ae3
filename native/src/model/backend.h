// Which processor runs a model's denoiser: the CPU kernels, or the GPU through the CUDA engine
// library (kernels/cuda/engine_api.h) that a CUDA build places beside the addon and that this
// file dlopen()s. The choice is made once per model load: `auto` (the default) takes CUDA when
// the build has it and a usable device is visible, else the CPU; `cpu` and `cuda` force one, and
// `cuda` where it cannot run is an error at load naming why.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "io/config.h"
#include "model/knobs.h"

namespace ff {

namespace cuda {
class EngineDit;
class EngineVae;
}
class Dit;
struct DitText;
class WeightSet;
class TeaCache;

enum class BackendKind { Auto, Cpu, Cuda };

// Throws Error(BadRequest) naming `where` (e.g. "FRAMEFLEET_BACKEND") and the allowed values.
BackendKind parse_backend(const std::string& value, const std::string& where);

// The CUDA side of this build and machine, probed once per process (thread-safe).
struct CudaStatus {
  bool built = false;      // the engine was compiled with its CUDA path (FF_WITH_CUDA)
  bool available = false;  // the engine library loaded and a device its kernels run on is visible
  std::string reason;      // when !available: one line saying why
  std::string device;      // e.g. "NVIDIA H200"
  int major = 0, minor = 0;
  uint64_t memory_bytes = 0;
};
const CudaStatus& cuda_status();

// "cuda (NVIDIA H200, sm_90)" or "cpu".
std::string backend_label(BackendKind kind);

// A DiT's copy on the GPU and the host-side conditioning of each step (time embedding, block
// modulation, the text with padding rows removed). One generation at a time: the caller holds
// the model's GPU lock from begin() to the last forward().
class GpuDit {
 public:
  // Uploads `dit`'s weights. Throws Error(BadRequest) when the kernels do not run this model's
  // shapes, Error(OutOfMemory) when the device is full, Error(Internal) on other CUDA failures.
  GpuDit(const Dit& dit, const ModelConfig& config);
  ~GpuDit();
  GpuDit(const GpuDit&) = delete;
  GpuDit& operator=(const GpuDit&) = delete;

  // Sets the texts of a generation (uncond null without CFG) and forgets TeaCache state.
  void begin(const DitText& cond, const DitText* uncond);
  // v = DiT(x, t, text of the pass) like Dit::forward, TeaCache included. linear is not a knob
  // here: every linear runs as bf16 on cuBLAS.
  void forward(const Knobs& knobs, const float* x, const LatentShape& s, double t, bool cond, float* v, TeaCache* cache);
  // Whether the last forward() ran as one CUDA graph launch (docs/CUDA.md "CUDA graphs").
  bool last_step_graphed() const;

 private:
  const Dit& dit_;
  const ModelConfig& config_;
  std::unique_ptr<cuda::EngineDit> engine_;
};

// The VAE decoder's copy on the GPU (fp32, the same sequence as VaeDecoder). Callers serialize
// decode() (its buffers are shared), as they do GpuDit's steps.
class GpuVae {
 public:
  // `w` prepared (vae_decoder.safetensors). Throws as GpuDit's constructor.
  GpuVae(const WeightSet& w, const VaeConfig& config);
  ~GpuVae();
  GpuVae(const GpuVae&) = delete;
  GpuVae& operator=(const GpuVae&) = delete;

  // As VaeDecoder::decode: latents [C, T, h, w] (before scaling) -> [3, F, 8h, 8w].
  Tensor decode(const float* latents, const LatentShape& s) const;

 private:
  std::unique_ptr<cuda::EngineVae> engine_;
  int64_t latent_channels_ = 0;
};

}  // namespace ff
