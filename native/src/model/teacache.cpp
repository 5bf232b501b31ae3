#include "model/teacache.h"

#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace ff {

double polyval(const std::vector<double>& coefficients, double x) {
  double y = 0.0;
  for (double c : coefficients) y = y * x + c;
  return y;
}

double relative_l1_from_sums(double diff, double base) {
  if (base == 0.0) return diff == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return diff / base;
}

double relative_l1(const float* a, const float* b, int64_t n) {
  double diff = 0.0, base = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    diff += std::fabs(double{a[i]} - b[i]);
    base += std::fabs(double{b[i]});
  }
  return relative_l1_from_sums(diff, base);
}

TeaCache::TeaCache(double threshold, std::vector<double> coefficients, int steps)
    : threshold_(threshold), coefficients_(std::move(coefficients)), steps_(steps) {
  if (!(threshold > 0.0)) fail(ErrorCode::BadRequest, "teaCache threshold must be > 0 (0 turns the cache off)");
  if (coefficients_.empty()) {
    fail(ErrorCode::ModelFormat, "config.json: teacache.coefficients is empty; teaCache needs the fitted polynomial");
  }
}

bool TeaCache::should_compute(const float* h, int64_t n) {
  const bool has_state = residual_.size() == static_cast<size_t>(n) && previous_h_.size() == static_cast<size_t>(n);
  const bool compute = decide(has_state, [&] { return relative_l1(h, previous_h_.data(), n); });
  previous_h_.assign(h, h + n);
  return compute;
}

bool TeaCache::decide(bool has_state, const std::function<double()>& rel_l1) {
  const int step = step_++;
  bool compute = true;
  if (step == 0 || step >= steps_ - 1 || !has_state) {
    accumulated_ = 0.0;
  } else {
    accumulated_ += polyval(coefficients_, rel_l1());
    if (accumulated_ < threshold_) {
      compute = false;
    } else {
      accumulated_ = 0.0;
    }
  }
  if (!compute) ++skipped_;
  return compute;
}

void TeaCache::store_residual(const float* before, const float* after, int64_t n) {
  residual_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) residual_[static_cast<size_t>(i)] = after[i] - before[i];
}

void TeaCache::apply_residual(float* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) tokens[i] += residual_[static_cast<size_t>(i)];
}

}  // namespace ff
