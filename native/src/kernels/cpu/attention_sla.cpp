#include "attention_sla.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attention_sage.h"
#include "kernels/cpu/attention_sla_impl.h"
#include "core/error.h"
#include "kernels/cpu/vmath.h"

namespace ff::cpu {

namespace {

// phi(x) = softmax of x over its n channels (x minus shift when given); `exact` uses libm's exp
// (the oracle), otherwise exp_fast.
void softmaxChannels(const float* x, const float* shift, int64_t n, float* out, bool exact) {
  float mx = -INFINITY;
  for (int64_t c = 0; c < n; ++c) {
    out[c] = x[c] - (shift ? shift[c] : 0.0f);
    mx = std::max(mx, out[c]);
  }
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    out[c] = exact ? std::exp(out[c] - mx) : exp_fast(out[c] - mx);
    sum += out[c];
  }
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < n; ++c) out[c] *= inv;
}

void checkSla(const AttentionArgs& a, const SlaOptions& o) {
  if (a.q_len != a.kv_len || a.key_mask != nullptr) {
    fail(ErrorCode::Internal, "sla attention is self-attention only (no key mask, q_len == kv_len)");
  }
  if (!(o.topK > 0.0f && o.topK <= 1.0f)) {
    fail(ErrorCode::BadRequest, "slaTopK must be in (0, 1], got " + std::to_string(o.topK));
  }
}

bool allZero(const float* w, int64_t n) {
  return w == nullptr || std::all_of(w, w + n, [](float x) { return x == 0.0f; });
}

}  // namespace

int64_t slaSelectedCount(float topK, int64_t blocks) {
  const auto kc = static_cast<int64_t>(std::floor(static_cast<double>(topK) * static_cast<double>(blocks) + 0.5));
  return std::clamp<int64_t>(kc, 1, blocks);
}

std::vector<int32_t> slaSelectBlocksAvx512(const AttentionArgs& a, int64_t head, const float* kMean, int64_t kc);

std::vector<int32_t> slaSelectBlocks(const AttentionArgs& a, int64_t head, const float* kMean, int64_t kc) {
  // Every build selects the same blocks; the widest one the CPU runs is the fastest.
  if (variant_score(Variant::Avx512) > 0) return slaSelectBlocksAvx512(a, head, kMean, kc);
  return sla_detail::selectBlocks(a, head, kMean, kc);
}

void slaAttentionAvx2(const AttentionArgs& a, const SlaOptions& options, Variant variant, bool linear);
void slaAttentionAvx512(const AttentionArgs& a, const SlaOptions& options, Variant variant, bool linear);

void slaAttention(const AttentionArgs& a, const SlaOptions& options, Variant variant) {
  checkSla(a, options);
  if (variant == Variant::Avx512) variant = Variant::Avx2;
  const int64_t nb = (a.kv_len + kSlaBlock - 1) / kSlaBlock;
  const bool linear = slaSelectedCount(options.topK, nb) < nb && !allZero(options.projL, a.head_dim * a.head_dim);
  // The linear branch's loops run 16 lanes wide where the requested sparse variant is an
  // AVX-512 one (Vnni, Amx), 8 lanes wide for Avx2 requests, and Scalar requests run the baseline
  // build of the same code.
  if (variant_score(Variant::Avx512) > 0 && (variant == Variant::Vnni || variant == Variant::Amx))
    return slaAttentionAvx512(a, options, variant, linear);
  if (variant == Variant::Avx2 && variant_score(Variant::Avx2) > 0) return slaAttentionAvx2(a, options, variant, linear);
  sla_detail::slaAttentionImpl(a, options, variant, linear);
}

void slaAttentionReference(const AttentionArgs& a, const SlaOptions& options) {
  checkSla(a, options);
  const int64_t hd = a.head_dim, n = a.q_len;
  const int64_t nb = (n + kSlaBlock - 1) / kSlaBlock;
  const int64_t kc = slaSelectedCount(options.topK, nb);
  std::vector<float> phi(static_cast<size_t>(hd)), kt(static_cast<size_t>(hd));
  std::vector<double> s(static_cast<size_t>(n)), os(static_cast<size_t>(hd)), hr(static_cast<size_t>(hd * hd)),
      zr(static_cast<size_t>(hd)), ol(static_cast<size_t>(hd));
  for (int64_t h = 0; h < a.heads; ++h) {
    const std::vector<float> kMean = keyChannelMean(a, h);
    const std::vector<int32_t> selected = slaSelectBlocks(a, h, kMean.data(), kc);
    for (int64_t qb = 0; qb < nb; ++qb) {
      std::vector<bool> chosen(static_cast<size_t>(nb), false);
      for (int64_t i = 0; i < kc; ++i) chosen[static_cast<size_t>(selected[static_cast<size_t>(qb * kc + i)])] = true;
      std::fill(hr.begin(), hr.end(), 0.0);
      std::fill(zr.begin(), zr.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        if (chosen[static_cast<size_t>(j / kSlaBlock)]) continue;
        softmaxChannels(a.k + j * a.k_stride + h * hd, kMean.data(), hd, phi.data(), true);
        for (int64_t e1 = 0; e1 < hd; ++e1) {
          zr[static_cast<size_t>(e1)] += phi[static_cast<size_t>(e1)];
          for (int64_t d = 0; d < hd; ++d)
            hr[static_cast<size_t>(e1 * hd + d)] += double{phi[static_cast<size_t>(e1)]} * a.v[j * a.v_stride + h * hd + d];
        }
      }
      for (int64_t i = qb * kSlaBlock; i < std::min(n, (qb + 1) * kSlaBlock); ++i) {
        const float* qi = a.q + i * a.q_stride + h * hd;
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          if (!chosen[static_cast<size_t>(j / kSlaBlock)]) continue;
          double dot = 0.0;
          for (int64_t c = 0; c < hd; ++c) dot += double{qi[c]} * (a.k[j * a.k_stride + h * hd + c] - kMean[static_cast<size_t>(c)]);
          s[static_cast<size_t>(j)] = dot * a.scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double den = 0.0;
        std::fill(os.begin(), os.end(), 0.0);
        for (int64_t j = 0; j < n; ++j) {
          if (!chosen[static_cast<size_t>(j / kSlaBlock)]) continue;
          const double p = std::exp(s[static_cast<size_t>(j)] - mx);
          den += p;
          for (int64_t d = 0; d < hd; ++d) os[static_cast<size_t>(d)] += p * a.v[j * a.v_stride + h * hd + d];
        }
        float* out = a.out + i * a.out_stride + h * hd;
        for (int64_t d = 0; d < hd; ++d) out[d] = static_cast<float>(os[static_cast<size_t>(d)] / den);
        if (kc == nb || options.projL == nullptr) continue;
        softmaxChannels(qi, nullptr, hd, phi.data(), true);
        double lden = sla_detail::kLinearEps;
        for (int64_t c = 0; c < hd; ++c) lden += phi[static_cast<size_t>(c)] * zr[static_cast<size_t>(c)];
        for (int64_t d = 0; d < hd; ++d) {
          double num = 0.0;
          for (int64_t e1 = 0; e1 < hd; ++e1) num += phi[static_cast<size_t>(e1)] * hr[static_cast<size_t>(e1 * hd + d)];
          ol[static_cast<size_t>(d)] = num / lden;
        }
        for (int64_t d = 0; d < hd; ++d) {
          double y = 0.0;
          for (int64_t e1 = 0; e1 < hd; ++e1) y += ol[static_cast<size_t>(e1)] * options.projL[d * hd + e1];
          out[d] += static_cast<float>(y);
        }
      }
    }
  }
}

}  // namespace ff::cpu
