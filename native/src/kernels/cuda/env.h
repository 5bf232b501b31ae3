// The FF_CUDA_* switches of the CUDA kernels (bench/gpu's comparisons; docs/CUDA.md names each).
#pragma once
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace ff::cuda {

// The value of switch `name`: "" when unset or empty, else one of `allowed`; any other value throws
// std::invalid_argument naming the switch and its values.
inline std::string envChoice(const char* name, std::initializer_list<const char*> allowed) {
  const char* e = std::getenv(name);
  const std::string v = e ? e : "";
  if (v.empty()) return v;
  std::string list;
  size_t i = 0;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + std::string(a);
    ++i;
  }
  throw std::invalid_argument(std::string(name) + " must be " + list + ", got '" + v + "'");
}

}  // namespace ff::cuda
