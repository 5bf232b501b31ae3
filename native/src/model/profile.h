// Per-op wall-clock profile of the engine, off unless FRAMEFLEET_PROFILE=1 is set in the
// environment (or enable() is called, as `framefleet_bench profile` does). Each FF_PROFILE(name)
// scope adds its duration and a call count under `name`; report() prints the table sorted by
// time. When off a scope costs one relaxed load of a flag.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace ff::profile {

struct Entry {
  std::string name;
  double seconds = 0;
  long calls = 0;
};

bool enabled();
void enable(bool on);
void reset();
std::vector<Entry> entries();  // sorted by seconds, largest first
void report(std::FILE* out, const char* title);
void add(const char* name, double seconds);
double now();

class Scope {
 public:
  explicit Scope(const char* name) : name_(enabled() ? name : nullptr), t0_(name_ ? now() : 0.0) {}
  ~Scope() {
    if (name_) add(name_, now() - t0_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  double t0_;
};

}  // namespace ff::profile

#define FF_PROFILE_CAT2(a, b) a##b
#define FF_PROFILE_CAT(a, b) FF_PROFILE_CAT2(a, b)
#define FF_PROFILE(name) ::ff::profile::Scope FF_PROFILE_CAT(ff_profile_scope_, __LINE__)(name)
