// TeaCache (teaCache=threshold): skips the DiT block stack on steps whose input barely changed.
// Per CFG pass (conditional and unconditional each own one cache) and per DiT evaluation: the
// relative L1 change of the first block's modulated input h = LN(tok) * (1 + sc1) + s1 against
// the previous evaluation, mean|h - h_prev| / mean|h_prev|, is mapped through the config's
// polynomial (teacache.coefficients, highest power first) and accumulated. While the sum stays
// under the threshold the blocks are skipped and the residual cached at the last full evaluation
// (tokens after the blocks minus tokens before) is added instead; otherwise the blocks run and
// the sum restarts at 0. The first and the last step always run.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace ff {

class TeaCache {
 public:
  // threshold > 0; steps: the evaluations this pass will make (one per sampling step).
  TeaCache(double threshold, std::vector<double> coefficients, int steps);

  // Called once per evaluation with h: [n]; true when the block stack must run this time.
  bool should_compute(const float* h, int64_t n);
  // should_compute for a caller that keeps h and the residual itself (the GPU): has_state says
  // whether a previous h and a cached residual exist; rel_l1() is called only when the change
  // is needed. Counts the evaluation (and a skip) as should_compute does.
  bool decide(bool has_state, const std::function<double()>& rel_l1);
  // After a full evaluation: residual = after - before, both [n].
  void store_residual(const float* before, const float* after, int64_t n);
  // On a skipped evaluation: tokens += residual.
  void apply_residual(float* tokens, int64_t n) const;

  int skipped() const { return skipped_; }
  int evaluations() const { return step_; }

 private:
  double threshold_;
  std::vector<double> coefficients_;
  int steps_;
  int step_ = 0;
  int skipped_ = 0;
  double accumulated_ = 0;
  std::vector<float> previous_h_;
  std::vector<float> residual_;
};

// numpy.polyval: coefficients highest power first.
double polyval(const std::vector<double>& coefficients, double x);
// mean|a - b| / mean|b| over n values (0 when b is all zero and a == b).
double relative_l1(const float* a, const float* b, int64_t n);
// The same from the two sums sum|a - b| and sum|b|.
double relative_l1_from_sums(double diff, double base);

}  // namespace ff
