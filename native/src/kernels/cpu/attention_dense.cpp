#include <cmath>
#include <vector>

#include "kernels/cpu/attention_dense_impl.h"

namespace ff {

void attention_dense_scalar(const AttentionArgs& a) { attention_dense_impl(a); }

// The widest build at or below `v` that this CPU runs (Vnni and Amx requests run the AVX-512 one).
void attention_dense_variant(Variant v, const AttentionArgs& a) {
  if (v >= Variant::Avx512 && variant_score(Variant::Avx512) > 0) return attention_dense_avx512(a);
  if (v >= Variant::Avx2 && variant_score(Variant::Avx2) > 0) return attention_dense_avx2(a);
  attention_dense_scalar(a);
}

void attention_dense(const AttentionArgs& a) {
  static const Variant best = best_variant({Variant::Scalar, Variant::Avx2, Variant::Avx512});
  attention_dense_variant(best, a);
}

void attention_reference(const AttentionArgs& a) {
  std::vector<double> s(a.kv_len);
  for (int64_t h = 0; h < a.heads; ++h)
    for (int64_t i = 0; i < a.q_len; ++i) {
      const float* q = a.q + i * a.q_stride + h * a.head_dim;
      double mx = -INFINITY;
      for (int64_t j = 0; j < a.kv_len; ++j) {
        if (a.key_mask && !a.key_mask[j]) {
          s[j] = -INFINITY;
          continue;
        }
        const float* k = a.k + j * a.k_stride + h * a.head_dim;
        double dot = 0;
        for (int64_t d = 0; d < a.head_dim; ++d) dot += double(q[d]) * k[d];
        s[j] = dot * a.scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < a.kv_len; ++j) {
        s[j] = s[j] == -INFINITY ? 0.0 : std::exp(s[j] - mx);
        sum += s[j];
      }
      float* o = a.out + i * a.out_stride + h * a.head_dim;
      for (int64_t d = 0; d < a.head_dim; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < a.kv_len; ++j)
          if (s[j] != 0.0) acc += s[j] * a.v[j * a.v_stride + h * a.head_dim + d];
        o[d] = sum > 0 ? float(acc / sum) : 0.f;
      }
    }
}

}  // namespace ff
