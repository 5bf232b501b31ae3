// The noise generator of docs/MODEL.md: counter-based SplitMix64 -> Box-Muller, so a seed gives
// the same noise bit for bit, filled in memory order; the stream continues across tensors.
#pragma once
#include <cstdint>

namespace ff {

class NoiseStream {
 public:
  explicit NoiseStream(uint64_t seed) : seed_(seed) {}
  // Fills n standard normal values. Pairs come from two consecutive counters; an odd n discards
  // the second value of its last pair.
  void fill(float* out, int64_t n);
  uint64_t counter() const { return counter_; }

  // SplitMix64 output for counter k: mix(seed + (k + 1) * 0x9E3779B97F4A7C15).
  static uint64_t splitmix64(uint64_t seed, uint64_t k);

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace ff
