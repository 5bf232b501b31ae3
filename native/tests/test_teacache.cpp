// TeaCache's decision rule and residual bookkeeping, independent of the model.
#include <cmath>
#include <vector>

#include "core/error.h"
#include "harness.h"
#include "model/teacache.h"

TEST(teacache_polyval_takes_the_highest_power_first) {
  CHECK(ff::polyval({2.0, -1.0, 3.0}, 2.0) == 9.0);
  CHECK(ff::polyval({5.0}, 123.0) == 5.0);
  const std::vector<float> a{1, -2, 3}, b{2, -2, 1};
  CHECK(std::fabs(ff::relative_l1(a.data(), b.data(), 3) - 3.0 / 5.0) < 1e-12);
}

TEST(teacache_skips_while_the_rescaled_change_stays_under_the_threshold) {
  // h grows by 10% of its previous mean magnitude per evaluation; identity polynomial.
  ff::TeaCache cache(0.25, {1.0, 0.0}, 6);
  std::vector<float> h(8, 1.0f);
  std::vector<bool> ran;
  for (int step = 0; step < 6; ++step) {
    ran.push_back(cache.should_compute(h.data(), 8));
    if (ran.back()) cache.store_residual(h.data(), h.data(), 8);
    for (float& x : h) x *= 1.1f;
  }
  const std::vector<bool> expected{true, false, false, true, false, true};
  CHECK(ran == expected);
  CHECK(cache.skipped() == 3);
  CHECK(cache.evaluations() == 6);
}

TEST(teacache_always_runs_the_first_and_last_steps) {
  ff::TeaCache cache(1e9, {0.0}, 3);
  std::vector<float> h(4, 2.0f), out(4, 0.0f);
  CHECK(cache.should_compute(h.data(), 4));
  cache.store_residual(h.data(), out.data(), 4);
  CHECK(!cache.should_compute(h.data(), 4));
  CHECK(cache.should_compute(h.data(), 4));
}

TEST(teacache_adds_the_residual_of_the_last_full_evaluation) {
  ff::TeaCache cache(10.0, {1.0, 0.0}, 4);
  const std::vector<float> before{1, 2, 3}, after{1.5f, 1, 7};
  std::vector<float> h{1, 1, 1};
  CHECK(cache.should_compute(h.data(), 3));
  cache.store_residual(before.data(), after.data(), 3);
  CHECK(!cache.should_compute(h.data(), 3));
  std::vector<float> tokens{10, 20, 30};
  cache.apply_residual(tokens.data(), 3);
  CHECK(tokens == (std::vector<float>{10.5f, 19, 34}));
}

TEST(teacache_rejects_a_zero_threshold_and_missing_coefficients) {
  CHECK_THROWS(ff::TeaCache(0.0, {1.0}, 10), ff::ErrorCode::BadRequest, "threshold");
  CHECK_THROWS(ff::TeaCache(0.1, {}, 10), ff::ErrorCode::ModelFormat, "teacache.coefficients");
}
