// exp written so the compiler vectorises loops that call it (libm's expf is a scalar call):
// branch-free round-to-nearest range reduction x = n ln2 + r, |r| <= ln2/2, degree-7 polynomial, 2^n built
// from the exponent bits. Relative error below 2e-7 on [-87, 88]; inputs are clamped there.
#pragma once
#include <cstdint>
#include <cstring>

namespace ff {

inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float t = x * 1.44269504088896341f;
  // Round to nearest with the 1.5 * 2^23 shifter (no float->int conversion branch, so loops
  // calling this vectorise); n is read back from the shifted value's mantissa bits.
  float shifted = t + 12582912.0f;
  float nf = shifted - 12582912.0f;
  int32_t n;
  std::memcpy(&n, &shifted, 4);
  n -= 0x4B400000;
  float r = x - nf * 0.693145751953125f - nf * 1.42860682030941723e-6f;
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// tanh-approximated GELU, the family's activation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// = x e / (e + 1) with e = exp(2u): no 1 + tanh(u) that cancels where gelu nears zero on the
// negative side, and finite at both ends with the clamp inside exp_fast (e / (e + 1) -> 0 or 1).
inline float gelu_fast(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  const float e = exp_fast(2.0f * u);
  return x * (e / (e + 1.0f));
}

inline float silu_fast(float x) { return x / (1.0f + exp_fast(-x)); }

}  // namespace ff
