// Minimal test harness: TEST(name) registers a case; CHECK records a failure and continues.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace fftest {

struct Case {
  const char* name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
void record_failure(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

// Relative L2 error ||a - b|| / ||b|| and cosine similarity of two arrays.
double rel_l2(const float* a, const float* b, size_t n);
double cosine(const float* a, const float* b, size_t n);

}  // namespace fftest

#define FF_CONCAT2(a, b) a##b
#define FF_CONCAT(a, b) FF_CONCAT2(a, b)
#define TEST(name)                                                              \
  static void FF_CONCAT(test_, name)();                                         \
  static fftest::Registrar FF_CONCAT(registrar_, name)(#name, FF_CONCAT(test_, name)); \
  static void FF_CONCAT(test_, name)()

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) fftest::record_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                                  \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::ostringstream os_;                                                                 \
      os_ << "CHECK(" #cond ") " << msg;                                                      \
      fftest::record_failure(__FILE__, __LINE__, os_.str());                                  \
    }                                                                                         \
  } while (0)

// Runs `stmt`, which must throw ff::Error with `code` and a message containing `needle`.
#define CHECK_THROWS(stmt, expected_code, needle)                                                       \
  do {                                                                                         \
    bool thrown_ = false;                                                                      \
    try {                                                                                      \
      stmt;                                                                                    \
    } catch (const ff::Error& e_) {                                                            \
      thrown_ = true;                                                                          \
      CHECK_MSG(e_.code() == (expected_code), "wrong code " << ff::error_code_name(e_.code()) << ": " << e_.what()); \
      CHECK_MSG(std::string(e_.what()).find(needle) != std::string::npos,                     \
                "message '" << e_.what() << "' lacks '" << (needle) << "'");                  \
    }                                                                                          \
    CHECK_MSG(thrown_, "expected an error containing '" << (needle) << "'");                  \
  } while (0)

namespace fftest {
// Uniform values in [-scale, scale), deterministic per seed (fresh inputs per test, never zeros).
std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f);
}  // namespace fftest
