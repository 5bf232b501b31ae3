// Flow-matching samplers of docs/MODEL.md: Euler with classifier-free guidance over a shifted
// schedule, and the few-step rCM consistency sampler. The network is a callback so the samplers
// know nothing of the model; each evaluation counts toward nfe.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "sampling/rng.h"

namespace ff {

enum class Guidance { Cond, Uncond };
// v = net(x, t, which) : [n] -> [n]
using VelocityFn = std::function<void(const float* x, double t, Guidance which, float* v)>;
// Called after each step (1-based); may throw to abort.
using StepFn = std::function<void(int step, int total)>;
// Fills n standard normal values, continuing one stream (NoiseStream::fill, or given noise in tests).
using NoiseFn = std::function<void(float* out, int64_t n)>;

// t_i = s u_i / (1 + (s - 1) u_i), u_i = 1 - i/N, i = 0..N
std::vector<double> euler_schedule(int steps, double shift);
// [atan(sigma_max), 1.5, 1.4, 1.0][:N] -> t = sin(a) / (sin(a) + cos(a)), then 0
std::vector<double> rcm_schedule(int steps, double sigma_max);

struct SampleResult {
  std::vector<float> x;
  int nfe = 0;
};

// x <- noise; x <- x + (t_{i+1} - t_i) (v_u + g (v_c - v_u)); one pass per step when g == 1.
SampleResult sample_euler(int64_t n, int steps, double shift, double guidance, const NoiseFn& noise, const VelocityFn& net, const StepFn& on_step);
// x <- noise * t_0; x0 = x - t_i v; x <- (1 - t_{i+1}) x0 + t_{i+1} fresh noise; returns the last x0.
SampleResult sample_rcm(int64_t n, int steps, double sigma_max, const NoiseFn& noise, const VelocityFn& net, const StepFn& on_step);

}  // namespace ff
