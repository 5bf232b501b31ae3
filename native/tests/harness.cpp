// Runs every registered case (or those whose name contains argv[1]); exit code 1 on any failure.
#include "harness.h"

#include <cstdio>
#include <cstring>
#include <exception>

#include "core/error.h"
#include "random_model.h"

namespace fftest {

namespace {
int failures = 0;
}

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

void record_failure(const char* file, int line, const std::string& what) {
  ++failures;
  std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(a[i]) - b[i];
    num += d * d;
    den += double(b[i]) * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / (std::sqrt(aa * bb) + 1e-30);
}

}  // namespace fftest

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int run = 0, failed_cases = 0;
  for (auto& c : fftest::registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    int before = fftest::failures;
    std::printf("%s\n", c.name);
    std::fflush(stdout);
    try {
      c.fn();
    } catch (const ff::Error& e) {
      fftest::record_failure(c.name, 0, std::string("uncaught ") + ff::error_code_name(e.code()) + ": " + e.what());
    } catch (const std::exception& e) {
      fftest::record_failure(c.name, 0, std::string("uncaught exception: ") + e.what());
    }
    ++run;
    if (fftest::failures != before) ++failed_cases;
  }
  std::printf("%d cases, %d failed\n", run, failed_cases);
  return failed_cases == 0 && run > 0 ? 0 : 1;
}

namespace fftest {
std::vector<float> random_vector(size_t n, uint64_t seed, float scale) { return fftools::random_uniform(n, seed, scale); }
}  // namespace fftest
