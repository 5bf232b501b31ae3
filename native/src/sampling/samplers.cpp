#include "sampling/samplers.h"

#include <cmath>

namespace ff {

std::vector<double> euler_schedule(int steps, double shift) {
  std::vector<double> t(steps + 1);
  for (int i = 0; i <= steps; ++i) {
    double u = 1.0 - double(i) / steps;
    t[i] = shift * u / (1.0 + (shift - 1.0) * u);
  }
  return t;
}

std::vector<double> rcm_schedule(int steps, double sigma_max) {
  const double angles[4] = {std::atan(sigma_max), 1.5, 1.4, 1.0};
  std::vector<double> t;
  for (int i = 0; i < steps && i < 4; ++i) t.push_back(std::sin(angles[i]) / (std::sin(angles[i]) + std::cos(angles[i])));
  t.push_back(0.0);
  return t;
}

SampleResult sample_euler(int64_t n, int steps, double shift, double guidance, const NoiseFn& noise, const VelocityFn& net,
                          const StepFn& on_step) {
  SampleResult r;
  r.x.resize(n);
  noise(r.x.data(), n);
  std::vector<float> vc(n), vu(guidance == 1.0 ? 0 : n);
  const std::vector<double> t = euler_schedule(steps, shift);
  for (int i = 0; i < steps; ++i) {
    net(r.x.data(), t[i], Guidance::Cond, vc.data());
    ++r.nfe;
    if (guidance != 1.0) {
      net(r.x.data(), t[i], Guidance::Uncond, vu.data());
      ++r.nfe;
    }
    const float dt = float(t[i + 1] - t[i]), g = float(guidance);
    for (int64_t j = 0; j < n; ++j) {
      float v = guidance == 1.0 ? vc[j] : vu[j] + g * (vc[j] - vu[j]);
      r.x[j] += dt * v;
    }
    on_step(i + 1, steps);
  }
  return r;
}

SampleResult sample_rcm(int64_t n, int steps, double sigma_max, const NoiseFn& noise, const VelocityFn& net, const StepFn& on_step) {
  SampleResult r;
  const std::vector<double> t = rcm_schedule(steps, sigma_max);
  std::vector<float> x(n), v(n), eps(n);
  r.x.resize(n);
  noise(x.data(), n);
  for (int64_t j = 0; j < n; ++j) x[j] *= float(t[0]);
  for (int i = 0; i < steps; ++i) {
    net(x.data(), t[i], Guidance::Cond, v.data());
    ++r.nfe;
    for (int64_t j = 0; j < n; ++j) r.x[j] = x[j] - float(t[i]) * v[j];  // x0
    const float tn = float(t[i + 1]);
    if (tn > 0.f) {
      noise(eps.data(), n);
      for (int64_t j = 0; j < n; ++j) x[j] = (1.0f - tn) * r.x[j] + tn * eps[j];
    }
    on_step(i + 1, steps);
  }
  return r;
}

}  // namespace ff
