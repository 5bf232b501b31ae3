// The engine library's VAE decoder on the GPU (engine_vae.cu), behind EngineApi::createVae.
#pragma once
#include "kernels/cuda/engine_api.h"

namespace ff::cuda {

// Checks the structure (std::invalid_argument for a kernel size or channel count the decoder does
// not run) and uploads the weights.
EngineVae* createCudaVae(const EngineVaeWeights& weights);

}  // namespace ff::cuda
