#include <atomic>
#include <vector>

#include "core/arena.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "harness.h"

TEST(threadpool_covers_every_index_once) {
  ff::ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(10007);
  pool.parallel_for(10007, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) CHECK(h.load() == 1);
}

TEST(threadpool_nested_calls_run_serially_and_rethrow) {
  ff::ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) pool.parallel_for(10, [&](int64_t b2, int64_t e2) { sum += e2 - b2; });
  });
  CHECK(sum.load() == 640);
  auto failing = [](int64_t b, int64_t) {
    if (b == 0) ff::fail(ff::ErrorCode::Numeric, "boom");
  };
  CHECK_THROWS(pool.parallel_for(100, failing), ff::ErrorCode::Numeric, "boom");
}

TEST(arena_aligns_and_reuses_blocks) {
  ff::Arena arena(1024);
  float* a = arena.alloc(3);
  float* b = arena.alloc(2000);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  CHECK(reinterpret_cast<uintptr_t>(b) % 64 == 0);
  size_t reserved = arena.reserved_bytes();
  arena.reset();
  CHECK(arena.alloc(3) == a);
  arena.alloc(2000);
  CHECK(arena.reserved_bytes() == reserved);
}

TEST(cpu_features_score_scalar_always_and_respect_os_support) {
  CHECK(ff::variant_score(ff::Variant::Scalar) > 0);
  const auto& f = ff::cpu_features();
  if (!f.os_avx512) CHECK(ff::variant_score(ff::Variant::Avx512) == 0);
  if (!f.amx_permitted) CHECK(ff::variant_score(ff::Variant::Amx) == 0);
  ff::Variant best = ff::best_variant({ff::Variant::Scalar, ff::Variant::Avx2, ff::Variant::Avx512});
  CHECK(ff::variant_score(best) >= ff::variant_score(ff::Variant::Scalar));
}

TEST(arena_rewind_frees_only_later_allocations) {
  ff::Arena arena(256);
  float* keep = arena.alloc(100);
  ff::Arena::Mark m = arena.mark();
  float* tmp = arena.alloc(500);
  arena.alloc(50);
  arena.rewind(m);
  CHECK(arena.alloc(500) == tmp);
  CHECK(keep != tmp);
}
