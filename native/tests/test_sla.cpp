// Sparse-linear attention: the block-selection rule, the fast path against the fp32 oracle,
// topK = 1 against Sage attention, and the oracle against dense attention.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "harness.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_sage.h"
#include "kernels/cpu/attention_sla.h"

using fftest::random_vector;

namespace {

struct Qkv {
  int64_t n, heads, hd;
  std::vector<float> q, k, v;
  ff::AttentionArgs args(float* out) {
    const int64_t w = heads * hd;
    return ff::AttentionArgs{n, n, heads, hd, q.data(), w, k.data(), w, v.data(), w, out, w, nullptr,
                             1.0f / std::sqrt(static_cast<float>(hd))};
  }
};

// Video-like tokens: each channel of q and k oscillates slowly at its own frequency, so attention
// is local and pooled block scores carry signal; V drifts too; K has outlier channels.
Qkv makeQkv(int64_t n, int64_t heads, int64_t hd, uint64_t seed) {
  const int64_t w = heads * hd;
  Qkv x{n, heads, hd, random_vector(n * w, seed), random_vector(n * w, seed + 1), random_vector(n * w, seed + 2)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < w; ++c) {
      const float freq = 0.002f + 0.05f * static_cast<float>(c % 16) / 16.0f;
      const float drift = 1.5f * std::sin(freq * static_cast<float>(i) + 0.7f * static_cast<float>(c));
      x.q[i * w + c] += drift;
      x.k[i * w + c] += drift + (c % 7 == 3 ? 9.0f : 0.0f);
      x.v[i * w + c] += std::sin(0.01f * static_cast<float>(i) + 1.3f * static_cast<float>(c));
    }
  return x;
}

std::vector<float> projection(int64_t hd, uint64_t seed) {
  auto p = random_vector(hd * hd, seed, 0.3f);
  for (int64_t i = 0; i < hd; ++i) p[i * hd + i] += 1.0f;
  return p;
}

}  // namespace

TEST(sla_selects_round_half_up_count_of_blocks) {
  CHECK(ff::cpu::slaSelectedCount(0.1f, 36) == 4);  // MODEL.md's 128x128x33 example
  CHECK(ff::cpu::slaSelectedCount(0.1f, 256) == 26);
  CHECK(ff::cpu::slaSelectedCount(1.0f, 7) == 7);
  CHECK(ff::cpu::slaSelectedCount(0.01f, 5) == 1);
  CHECK(ff::cpu::slaSelectedCount(0.5f, 3) == 2);
}

TEST(sla_breaks_score_ties_towards_lower_block_indices) {
  Qkv x = makeQkv(300, 1, 16, 3);
  std::fill(x.q.begin(), x.q.end(), 0.0f);  // every pooled score is 0
  std::vector<float> out(300 * 16);
  const auto mean = ff::cpu::keyChannelMean(x.args(out.data()), 0);
  const auto sel = ff::cpu::slaSelectBlocks(x.args(out.data()), 0, mean.data(), 2);
  for (int64_t b = 0; b < 5; ++b) CHECK(sel[b * 2] == 0 && sel[b * 2 + 1] == 1);

  // A tie at the cut after a larger score arrives: pooled scores -1, -1, 2, -1 -> blocks 2 and 0.
  Qkv y = makeQkv(256, 1, 16, 5);
  std::fill(y.q.begin(), y.q.end(), 0.0f);
  std::fill(y.k.begin(), y.k.end(), 0.0f);
  const float level[4] = {1.0f, 1.0f, 4.0f, 1.0f};  // channel 0 per block; the mean is 1.75
  for (int64_t i = 0; i < 256; ++i) {
    y.q[i * 16] = 1.0f;
    y.k[i * 16] = level[i / 64];
  }
  std::vector<float> out2(256 * 16);
  const auto mean2 = ff::cpu::keyChannelMean(y.args(out2.data()), 0);
  const auto sel2 = ff::cpu::slaSelectBlocks(y.args(out2.data()), 0, mean2.data(), 2);
  for (int64_t b = 0; b < 4; ++b) CHECK_MSG(sel2[b * 2] == 0 && sel2[b * 2 + 1] == 2, "block " << b << ": " << sel2[b * 2] << ", " << sel2[b * 2 + 1]);
}

TEST(sla_reference_at_topk_1_equals_dense_attention) {
  Qkv x = makeQkv(200, 2, 24, 11);
  std::vector<float> sla(200 * 48), dense(200 * 48);
  const auto p = projection(24, 12);
  ff::cpu::slaAttentionReference(x.args(sla.data()), {1.0f, p.data()});
  ff::attention_reference(x.args(dense.data()));
  CHECK_MSG(fftest::rel_l2(sla.data(), dense.data(), sla.size()) < 1e-5, "relL2 " << fftest::rel_l2(sla.data(), dense.data(), sla.size()));
}

TEST(sla_at_topk_1_equals_sage_attention) {
  Qkv x = makeQkv(330, 2, 64, 21);
  std::vector<float> sla(330 * 128), sage(330 * 128);
  const auto p = projection(64, 22);
  const ff::Variant v = ff::cpu::bestInt8Variant();
  ff::cpu::slaAttention(x.args(sla.data()), {1.0f, p.data()}, v);
  ff::cpu::sageAttention(x.args(sage.data()), v);
  const double err = fftest::rel_l2(sla.data(), sage.data(), sla.size());
  CHECK_MSG(err <= 1e-6, "relL2 " << err);
}

TEST(sla_fast_path_matches_the_fp32_oracle_with_the_linear_branch) {
  for (float topK : {0.25f, 0.5f}) {
    Qkv x = makeQkv(520, 2, 64, 31);
    const size_t size = 520 * 128;
    std::vector<float> fast(size), oracle(size), sparseOnly(size);
    const auto p = projection(64, 32);
    ff::cpu::slaAttention(x.args(fast.data()), {topK, p.data()}, ff::cpu::bestInt8Variant());
    ff::cpu::slaAttentionReference(x.args(oracle.data()), {topK, p.data()});
    ff::cpu::slaAttentionReference(x.args(sparseOnly.data()), {topK, nullptr});
    const double cos = fftest::cosine(fast.data(), oracle.data(), size);
    const double err = fftest::rel_l2(fast.data(), oracle.data(), size);
    CHECK_MSG(cos >= 0.999 && err <= 3e-2, "topK " << topK << ": cosine " << cos << " relL2 " << err);
    // The linear branch contributes: dropping proj_l moves the result well beyond the int8 error.
    CHECK(fftest::rel_l2(sparseOnly.data(), oracle.data(), size) > 5 * err);
  }
}

TEST(sla_linear_branch_matches_the_oracle_in_each_build) {
  // The linear branch alone (with proj_l minus without): the baseline build (Scalar, Avx2
  // requests) and the AVX-512 one (Vnni, Amx) in fp32 must both track the oracle to 1e-4; with
  // the fp16 products (AVX512-FP16 CPUs, head dim 64) to 2e-3, fp16's rounding of both factors.
  // Head dim 64 takes the register-blocked path, 32 the generic loops; 301 tokens leave a
  // ragged last block and query group.
  for (int64_t hd : {64, 32}) {
    Qkv x = makeQkv(301, 3, hd, 57);
    const size_t size = 301 * 3 * hd;
    const auto p = projection(hd, 58);
    std::vector<float> oracle(size), oracleSparse(size);
    ff::cpu::slaAttentionReference(x.args(oracle.data()), {0.2f, p.data()});
    ff::cpu::slaAttentionReference(x.args(oracleSparse.data()), {0.2f, nullptr});
    std::vector<float> want(size);
    for (size_t i = 0; i < size; ++i) want[i] = oracle[i] - oracleSparse[i];
    for (ff::Variant v : {ff::Variant::Scalar, ff::Variant::Avx2, ff::Variant::Vnni, ff::Variant::Amx}) {
      if (ff::variant_score(v) == 0) continue;
      for (bool fp16 : {false, true}) {
        const bool before = ff::cpu::setSlaLinearFp16(fp16);
        const bool active = fp16 && ff::cpu::slaLinearFp16Enabled() && hd == 64 &&
                            (v == ff::Variant::Vnni || v == ff::Variant::Amx);
        std::vector<float> fast(size), sparse(size), got(size);
        ff::cpu::slaAttention(x.args(fast.data()), {0.2f, p.data()}, v);
        ff::cpu::slaAttention(x.args(sparse.data()), {0.2f, nullptr}, v);
        ff::cpu::setSlaLinearFp16(before);
        for (size_t i = 0; i < size; ++i) got[i] = fast[i] - sparse[i];
        const double err = fftest::rel_l2(got.data(), want.data(), size);
        CHECK_MSG(err < (active ? 2e-3 : 1e-4),
                  ff::variant_name(v) << " hd " << hd << (active ? " fp16" : "") << ": linear branch relL2 " << err);
      }
    }
  }
}

TEST(sla_fp16_linear_products_fall_back_to_fp32_out_of_range) {
  if (!ff::cpu::slaLinearFp16Enabled()) return;  // needs AVX512-FP16
  // Rows whose partial sums could leave fp16's range: the fp16 product declines and writes
  // nothing; in range it matches the fp32 sum closely.
  std::vector<float> rows(64 * 64), x(4 * 64), out(4 * 64, 7.0f);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 13) % 29) / 29.0f;
  std::vector<uint16_t> packed(64 * 64);
  const float maxRows = ff::cpu::packVFp16(rows.data(), 64, 64, 64, 64, 64, packed.data());
  CHECK(maxRows == 1.0f);
  CHECK(ff::cpu::slaCombine4x64Fp16(x.data(), 64, packed.data(), maxRows, out.data(), 64));
  double err = 0, norm = 0;
  for (int j = 0; j < 4; ++j)
    for (int d = 0; d < 64; ++d) {
      double want = 0;
      for (int i = 0; i < 64; ++i) want += double{x[j * 64 + i]} * rows[i * 64 + d];
      err += (out[j * 64 + d] - want) * (out[j * 64 + d] - want);
      norm += want * want;
    }
  CHECK_MSG(std::sqrt(err / norm) < 2e-3, "relL2 " << std::sqrt(err / norm));
  for (float& v : x) v *= 2000.0f;  // 32 x 2000 x 1 > 32768
  std::fill(out.begin(), out.end(), 7.0f);
  CHECK(!ff::cpu::slaCombine4x64Fp16(x.data(), 64, packed.data(), maxRows, out.data(), 64));
  for (float v : out) CHECK(v == 7.0f);
  // The whole attention with such values still matches the oracle (the fp32 products ran).
  Qkv big = makeQkv(200, 1, 64, 61);
  for (float& v : big.v) v *= 3000.0f;
  const auto p = projection(64, 62);
  std::vector<float> fast(200 * 64), oracle(200 * 64);
  ff::cpu::slaAttention(big.args(fast.data()), {0.25f, p.data()}, ff::Variant::Vnni);
  ff::cpu::slaAttentionReference(big.args(oracle.data()), {0.25f, p.data()});
  for (float v : fast) CHECK(std::isfinite(v));
  CHECK_MSG(fftest::rel_l2(fast.data(), oracle.data(), fast.size()) < 3e-2, "relL2 " << fftest::rel_l2(fast.data(), oracle.data(), fast.size()));
}

TEST(sla_at_topk_0_1_reports_its_error_against_dense) {
  Qkv x = makeQkv(1280, 1, 64, 41);
  std::vector<float> sla(1280 * 64), dense(1280 * 64);
  ff::cpu::slaAttention(x.args(sla.data()), {0.1f, nullptr}, ff::cpu::bestInt8Variant());
  ff::attention_reference(x.args(dense.data()));
  const double cos = fftest::cosine(sla.data(), dense.data(), sla.size());
  const double err = fftest::rel_l2(sla.data(), dense.data(), sla.size());
  std::printf("  sla topK 0.1 vs dense (N=1280, hd=64, 2 of 20 blocks): relL2 %.4f cosine %.4f\n", err, cos);
  // Local attention keeps most of its mass in the selected blocks: a loose floor catches breakage.
  CHECK_MSG(std::isfinite(err) && cos > 0.98, "cosine " << cos);
}

TEST(sla_block_selection_equals_a_stable_sort_of_the_pooled_scores) {
  // Inputs on a coarse grid so that many pooled scores tie; ragged last block.
  for (int64_t hd : {16, 64}) {
    Qkv x = makeQkv(64 * 23 + 17, 2, hd, 40 + hd);
    for (float& f : x.q) f = std::round(f * 2.0f) / 2.0f;
    for (float& f : x.k) f = std::round(f);
    const int64_t n = x.n, nb = (n + 63) / 64, w = x.heads * hd;
    std::vector<float> out(n * w);
    for (int64_t head = 0; head < x.heads; ++head) {
      const auto mean = ff::cpu::keyChannelMean(x.args(out.data()), head);
      // Pooled means in double per channel, minus the key mean for keys; scores in double.
      auto pooled = [&](const std::vector<float>& t, int64_t b, bool key) {
        std::vector<float> m(hd);
        const int64_t r0 = b * 64, r1 = std::min(n, r0 + 64);
        for (int64_t c = 0; c < hd; ++c) {
          double sum = 0.0;
          for (int64_t r = r0; r < r1; ++r) sum += t[r * w + head * hd + c];
          m[c] = static_cast<float>(sum / static_cast<double>(r1 - r0) - (key ? mean[c] : 0.0f));
        }
        return m;
      };
      for (int64_t kc : {1, 4, 16, 17}) {
        const auto sel = ff::cpu::slaSelectBlocks(x.args(out.data()), head, mean.data(), kc);
        CHECK(static_cast<int64_t>(sel.size()) == nb * kc);
        for (int64_t b = 0; b < nb; ++b) {
          const auto qm = pooled(x.q, b, false);
          std::vector<float> score(nb);
          for (int64_t j = 0; j < nb; ++j) {
            const auto km = pooled(x.k, j, true);
            double s = 0.0;
            for (int64_t c = 0; c < hd; ++c) s += double{qm[c]} * km[c];
            score[j] = static_cast<float>(s);
          }
          std::vector<int32_t> order(nb);
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](int32_t p, int32_t q) { return score[p] > score[q]; });
          std::vector<int32_t> want(order.begin(), order.begin() + kc);
          std::sort(want.begin(), want.end());
          for (int64_t i = 0; i < kc; ++i)
            CHECK_MSG(sel[b * kc + i] == want[i], "hd " << hd << " head " << head << " kc " << kc << " block " << b);
        }
      }
    }
  }
}

TEST(sla_rejects_masks_cross_attention_and_bad_topk) {
  Qkv x = makeQkv(64, 1, 16, 51);
  std::vector<float> out(64 * 16);
  ff::AttentionArgs cross = x.args(out.data());
  cross.kv_len = 32;
  CHECK_THROWS(ff::cpu::slaAttention(cross, {0.5f, nullptr}, ff::Variant::Scalar), ff::ErrorCode::Internal, "self-attention");
  CHECK_THROWS(ff::cpu::slaAttention(x.args(out.data()), {0.0f, nullptr}, ff::Variant::Scalar), ff::ErrorCode::BadRequest, "slaTopK");
}
