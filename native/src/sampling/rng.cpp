#include "sampling/rng.h"

#include <cmath>

#include "core/threadpool.h"

namespace ff {

uint64_t NoiseStream::splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void NoiseStream::fill(float* out, int64_t n) {
  const int64_t pairs = (n + 1) / 2;
  const uint64_t base = counter_;
  ThreadPool::global().parallel_for(pairs, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      // u1 in (0, 1], u2 in [0, 1): 53-bit uniforms
      double u1 = double((splitmix64(seed_, base + 2 * p) >> 11) + 1) * 0x1.0p-53;
      double u2 = double(splitmix64(seed_, base + 2 * p + 1) >> 11) * 0x1.0p-53;
      double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
      out[2 * p] = float(r * std::cos(a));
      if (2 * p + 1 < n) out[2 * p + 1] = float(r * std::sin(a));
    }
  }, 4096);
  counter_ += 2 * uint64_t(pairs);
}

}  // namespace ff
