#include "model/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace ff::profile {

namespace {

std::atomic<int>& flag() {
  static std::atomic<int> on{[] {
    const char* v = std::getenv("FRAMEFLEET_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0 ? 1 : 0;
  }()};
  return on;
}

std::mutex& mu() {
  static std::mutex m;
  return m;
}

std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}

}  // namespace

bool enabled() { return flag().load(std::memory_order_relaxed) != 0; }
void enable(bool on) { flag().store(on ? 1 : 0); }

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void add(const char* name, double seconds) {
  std::lock_guard<std::mutex> lock(mu());
  Entry& e = table()[name];
  e.name = name;
  e.seconds += seconds;
  e.calls += 1;
}

void reset() {
  std::lock_guard<std::mutex> lock(mu());
  table().clear();
}

std::vector<Entry> entries() {
  std::vector<Entry> out;
  {
    std::lock_guard<std::mutex> lock(mu());
    for (const auto& [name, e] : table()) out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return out;
}

void report(std::FILE* out, const char* title) {
  const std::vector<Entry> all = entries();
  double total = 0;
  for (const Entry& e : all) total += e.seconds;
  std::fprintf(out, "%s\n  %-28s %10s %8s %7s\n", title, "op", "ms", "calls", "share");
  for (const Entry& e : all)
    std::fprintf(out, "  %-28s %10.2f %8ld %6.1f%%\n", e.name.c_str(), 1e3 * e.seconds, e.calls, total > 0 ? 100 * e.seconds / total : 0);
  std::fprintf(out, "  %-28s %10.2f\n", "sum", 1e3 * total);
}

}  // namespace ff::profile
