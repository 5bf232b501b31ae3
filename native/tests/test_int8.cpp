// W8A8 linear and Sage attention: every INT8 variant this CPU runs against its scalar INT8
// oracle, and the INT8 results against fp32, on fresh random inputs.
#include <bit>
#include <cmath>
#include <utility>
#include <vector>

#include "harness.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_sage.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_int8.h"
#include "core/error.h"
#include "model/dispatch.h"

using fftest::random_vector;
using ff::Variant;

namespace {

const Variant kInt8Variants[] = {Variant::Avx2, Variant::Vnni, Variant::Amx};

// q, k, v: [n, heads * hd]; k gets outlier channels: a large per-channel offset (which K
// smoothing removes) on every 7th channel and doubled spread on every 5th.
struct AttentionInputs {
  std::vector<float> q, k, v;
};
AttentionInputs attentionInputs(int64_t n, int64_t width, uint64_t seed) {
  AttentionInputs in{random_vector(n * width, seed, 1.7f), random_vector(n * width, seed + 1, 1.7f),
                     random_vector(n * width, seed + 2)};
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < width; ++c) {
      float& x = in.k[i * width + c];
      if (c % 5 == 1) x *= 2.0f;
      if (c % 7 == 3) x += 12.0f;
    }
  }
  return in;
}

ff::AttentionArgs selfAttention(AttentionInputs& in, int64_t n, int64_t heads, int64_t hd, float* out) {
  const int64_t w = heads * hd;
  return ff::AttentionArgs{n, n, heads, hd, in.q.data(), w, in.k.data(), w, in.v.data(), w, out, w,
                           nullptr, 1.0f / std::sqrt(static_cast<float>(hd))};
}

}  // namespace

TEST(w8a8_variants_equal_the_int8_reference_bit_for_bit) {
  struct Case { int64_t M, N, K; };
  // 1000 rows: many row blocks, so worker threads quantize and multiply too.
  const Case cases[] = {{1, 16, 64}, {17, 37, 19}, {77, 100, 90}, {64, 384, 384}, {45, 70, 200}, {1000, 48, 96}};
  uint64_t seed = 100;
  for (const Case& c : cases) {
    auto x = random_vector(c.M * c.K, seed++, 3.0f);
    auto w = random_vector(c.N * c.K, seed++, 0.2f);
    auto b = random_vector(c.N, seed++);
    std::vector<float> ref(c.M * c.N), out(c.M * c.N);
    auto scalar = ff::cpu::quantizeLinear(w.data(), b.data(), c.N, c.K, Variant::Scalar);
    ff::cpu::linearW8A8Reference(scalar, x.data(), c.M, ref.data());
    for (Variant v : kInt8Variants) {
      if (!ff::cpu::int8VariantRuns(v)) continue;
      auto layer = ff::cpu::quantizeLinear(w.data(), b.data(), c.N, c.K, v);
      std::fill(out.begin(), out.end(), NAN);
      ff::cpu::linearW8A8(layer, x.data(), c.M, out.data());
      int64_t differ = 0;
      for (size_t i = 0; i < out.size(); ++i) differ += out[i] != ref[i];
      CHECK_MSG(differ == 0, ff::variant_name(v) << " M=" << c.M << " N=" << c.N << " K=" << c.K
                                                 << ": " << differ << " outputs differ");
    }
  }
}

TEST(w8a8_matches_fp32_linear_with_cosine_above_0_999) {
  const int64_t M = 96, N = 200, K = 384;
  auto x = random_vector(M * K, 7, 2.0f);
  auto w = random_vector(N * K, 8, 0.1f);
  auto b = random_vector(N, 9);
  std::vector<float> fp32(M * N), int8(M * N);
  ff::gemm_nt_reference(ff::GemmArgs{M, N, K, x.data(), K, w.data(), K, fp32.data(), N, b.data(), false});
  auto layer = ff::cpu::quantizeLinear(w.data(), b.data(), N, K, ff::cpu::bestInt8Variant());
  ff::cpu::linearW8A8(layer, x.data(), M, int8.data());
  const double cos = fftest::cosine(int8.data(), fp32.data(), int8.size());
  const double err = fftest::rel_l2(int8.data(), fp32.data(), int8.size());
  CHECK_MSG(cos >= 0.999, "cosine " << cos);
  CHECK_MSG(err <= 2e-2, "relL2 " << err);
}

TEST(w8a8_prequantized_weights_equal_quantize_at_load) {
  const int64_t N = 33, K = 70, M = 20;
  auto w = random_vector(N * K, 21, 0.5f);
  auto x = random_vector(M * K, 22);
  std::vector<int8_t> q(N * K);
  std::vector<float> scale(N);
  ff::cpu::quantizeRowsScalar(w.data(), N, K, K, q.data(), K, scale.data());
  const Variant v = ff::cpu::bestInt8Variant();
  auto atLoad = ff::cpu::quantizeLinear(w.data(), nullptr, N, K, v);
  auto stored = ff::cpu::int8LinearFromQuantized(q.data(), scale.data(), nullptr, N, K, v);
  CHECK(atLoad.weights == stored.weights);
  std::vector<float> a(M * N), b(M * N);
  ff::cpu::linearW8A8(atLoad, x.data(), M, a.data());
  ff::cpu::linearW8A8(stored, x.data(), M, b.data());
  CHECK(a == b);
}

TEST(int8_quantization_rounds_identically_on_every_path) {
  const int64_t rows = 9, cols = 83, ld = 128;
  auto x = random_vector(rows * cols, 31, 5.0f);
  x[5] = 0.5f * 5.0f / 127.0f;  // exactly half a step above zero: ties must round to even
  std::vector<int8_t> a(rows * ld, 1), b(rows * ld, 2);
  std::vector<float> sa(rows), sb(rows);
  ff::cpu::quantizeRowsScalar(x.data(), rows, cols, cols, a.data(), ld, sa.data());
  ff::cpu::quantizeRows(x.data(), rows, cols, cols, b.data(), ld, sb.data());
  CHECK(a == b);
  CHECK(sa == sb);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) CHECK(std::fabs(a[r * ld + c] * sa[r] - x[r * cols + c]) <= 0.5f * sa[r] * 1.0001f);
}

TEST(stored_w8a8_weights_with_minus_128_are_refused_naming_the_tensor) {
  const int64_t N = 3, K = 5;
  std::vector<int8_t> q(N * K, 7);
  std::vector<float> scale(N, 0.01f), w(N * K, 0.07f);
  ff::LinearWeights lw;
  lw.name = "dit.blocks.0.ffn.fc1";
  lw.out = N;
  lw.in = K;
  lw.weight = w.data();
  lw.weight_q = q.data();
  lw.weight_scale = scale.data();
  ff::prepare_linear(ff::LinearKind::W8a8, lw);  // [-127, 127]: accepted
  CHECK(lw.state(ff::LinearKind::W8a8) != nullptr);
  q[11] = -128;
  ff::LinearWeights bad = lw;
  bad.kernel_state = {};
  CHECK_THROWS(ff::prepare_linear(ff::LinearKind::W8a8, bad), ff::ErrorCode::ModelFormat,
               "tensor dit.blocks.0.ffn.fc1.weight_q: value -128 at element 11");
}

TEST(sage_attention_matches_dense_fp32_within_the_accuracy_bounds) {
  const int64_t n = 300, heads = 2, hd = 64;
  AttentionInputs in = attentionInputs(n, heads * hd, 41);
  std::vector<float> dense(n * heads * hd), sage(n * heads * hd), oracle(n * heads * hd);
  ff::attention_reference(selfAttention(in, n, heads, hd, dense.data()));
  ff::cpu::sageAttentionReference(selfAttention(in, n, heads, hd, oracle.data()));
  // Vnni twice where the CPU has AVX512-FP16: with its fp16 P.V and with fp32 FMAs.
  const bool fp16Default = ff::cpu::setSagePvFp16(true);
  for (Variant v : {Variant::Scalar, Variant::Avx2, Variant::Vnni, Variant::Amx}) {
    if (!ff::cpu::int8VariantRuns(v)) continue;
    for (bool fp16 : {false, true}) {
      if (fp16 && (v != Variant::Vnni || !ff::cpu::sageFp16Runs())) continue;
      ff::cpu::setSagePvFp16(fp16);
      std::fill(sage.begin(), sage.end(), NAN);
      ff::cpu::sageAttention(selfAttention(in, n, heads, hd, sage.data()), v);
      const double cos = fftest::cosine(sage.data(), dense.data(), sage.size());
      const double err = fftest::rel_l2(sage.data(), dense.data(), sage.size());
      CHECK_MSG(cos >= 0.999 && err <= 3e-2,
                ff::variant_name(v) << (fp16 ? " fp16" : "") << " vs dense: cosine " << cos << " relL2 " << err);
      // The oracle differs only by the rounded P.V (bf16 on AMX, fp16 on VNNI with AVX512-FP16)
      // and by the exp2 polynomial elsewhere.
      const double vsOracle = fftest::rel_l2(sage.data(), oracle.data(), sage.size());
      CHECK_MSG(vsOracle <= (v == Variant::Amx || fp16 ? 5e-3 : 1e-5),
                ff::variant_name(v) << (fp16 ? " fp16" : "") << " vs oracle relL2 " << vsOracle);
    }
  }
  ff::cpu::setSagePvFp16(fp16Default);
}

TEST(sage_fp16_pv_falls_back_to_fp32_for_values_out_of_fp16_range) {
  if (!ff::cpu::sageFp16Runs()) return;  // needs AVX512-FP16
  // V up to 1e5 with flat scores: 32-key fp16 partial sums would pass 65504. The head runs its
  // P.V in fp32 instead, so the output is finite and tracks the fp32 oracle as tightly as fp32.
  const int64_t n = 200, hd = 64;
  AttentionInputs in = attentionInputs(n, hd, 71);
  for (float& x : in.q) x *= 1e-3f;
  for (float& x : in.v) x *= 1e5f;
  std::vector<float> sage(n * hd), oracle(n * hd);
  const bool fp16Default = ff::cpu::setSagePvFp16(true);
  ff::cpu::sageAttention(selfAttention(in, n, 1, hd, sage.data()), Variant::Vnni);
  ff::cpu::setSagePvFp16(fp16Default);
  ff::cpu::sageAttentionReference(selfAttention(in, n, 1, hd, oracle.data()));
  for (float x : sage) CHECK(std::isfinite(x));
  const double err = fftest::rel_l2(sage.data(), oracle.data(), sage.size());
  CHECK_MSG(err <= 1e-5, "vs oracle relL2 " << err);
}

TEST(sage_fp16_v_packing_pairs_keys_rounds_to_nearest_and_zero_pads) {
  if (!ff::cpu::sageFp16Runs()) return;  // needs AVX512-FP16
  const int64_t nk = 70, hd = 40, hdV = 64, kPad = 128, ldv = 43;
  const auto v = fftest::random_vector(nk * ldv, 960, 3.0f);
  std::vector<uint16_t> got(kPad * hdV, 0xffff);
  ff::cpu::packVFp16(v.data(), ldv, nk, hd, hdV, kPad, got.data());
  for (int64_t j = 0; j < kPad; ++j)
    for (int64_t c = 0; c < hdV; ++c) {
      const uint16_t bits = got[ff::cpu::vF16Index(j, c, hdV)];
      if (j >= nk || c >= hd) {
        CHECK_MSG(bits == 0, "padding at " << j << "," << c);
        continue;
      }
      const float x = v[j * ldv + c], back = static_cast<float>(std::bit_cast<_Float16>(bits));
      // fp16 has an 11-bit significand: round to nearest is within half an ulp, 2^-11 relative.
      CHECK_MSG(std::fabs(back - x) <= std::fabs(x) * 0x1p-11f + 1e-7f, "value " << x << " -> " << back);
    }
}

TEST(sage_attention_handles_ragged_tokens_and_odd_head_dims) {
  const int64_t heads = 3;
  for (int64_t n : {1, 17, 65, 130}) {
    for (int64_t hd : {8, 40, 72}) {
      AttentionInputs in = attentionInputs(n, heads * hd, 50 + n + hd);
      std::vector<float> dense(n * heads * hd), sage(n * heads * hd);
      ff::attention_reference(selfAttention(in, n, heads, hd, dense.data()));
      ff::cpu::sageAttention(selfAttention(in, n, heads, hd, sage.data()), ff::cpu::bestInt8Variant());
      const double cos = fftest::cosine(sage.data(), dense.data(), sage.size());
      CHECK_MSG(cos >= 0.999, "n=" << n << " hd=" << hd << " cosine " << cos);
    }
  }
}

TEST(sage_attention_needs_k_smoothing_for_offset_channels) {
  // Without subtracting K's channel mean the +12 offsets would take most of the int8 range; the
  // smoothed result must stay as close to dense as it is without any offset.
  const int64_t n = 256, hd = 64;
  AttentionInputs in = attentionInputs(n, hd, 61);
  std::vector<float> dense(n * hd), sage(n * hd);
  ff::attention_reference(selfAttention(in, n, 1, hd, dense.data()));
  ff::cpu::sageAttention(selfAttention(in, n, 1, hd, sage.data()), ff::cpu::bestInt8Variant());
  const double withOffsets = fftest::rel_l2(sage.data(), dense.data(), sage.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 3; c < hd; c += 7) in.k[i * hd + c] -= 12.0f;
  ff::attention_reference(selfAttention(in, n, 1, hd, dense.data()));
  ff::cpu::sageAttention(selfAttention(in, n, 1, hd, sage.data()), ff::cpu::bestInt8Variant());
  const double withoutOffsets = fftest::rel_l2(sage.data(), dense.data(), sage.size());
  CHECK_MSG(withOffsets <= withoutOffsets * 1.05 + 1e-4, "with offsets " << withOffsets << " without " << withoutOffsets);
}

TEST(sage_v_bf16_packing_amx_equals_scalar) {
  if (ff::variant_score(ff::Variant::Amx) == 0) return;  // needs AMX-BF16 (and AVX-512 BF16)
  // Odd key counts (a lone last key), head dims off and on the 16-column tiles.
  for (int64_t hd : {64, 40}) {
    for (int64_t nk : {64, 77, 1}) {
      const int64_t hdV = (hd + 15) / 16 * 16, kPad = (nk + 63) / 64 * 64, ldv = hd + 3;
      const auto v = fftest::random_vector(nk * ldv, 900 + nk + hd, 3.0f);
      std::vector<uint16_t> a(kPad * hdV, 0), b(kPad * hdV, 0);
      ff::cpu::packVBf16Scalar(v.data(), ldv, nk, hd, hdV, a.data());
      ff::cpu::packVBf16Amx(v.data(), ldv, nk, hd, hdV, b.data());
      CHECK_MSG(a == b, "hd " << hd << " nk " << nk);
    }
  }
}

TEST(sage_block_quantization_vector_builds_equal_scalar_bit_for_bit) {
  using Block = float (*)(const float*, int64_t, int64_t, int64_t, const float*, int8_t*, int64_t);
  const std::pair<ff::Variant, Block> builds[] = {{ff::Variant::Avx512, ff::cpu::quantizeBlockAvx512},
                                                  {ff::Variant::Avx2, ff::cpu::quantizeBlockAvx2}};
  for (const auto& [variant, block] : builds) {
    if (ff::variant_score(variant) == 0) continue;
    for (int64_t cols : {64, 40, 128}) {
      for (bool shifted : {false, true}) {
        const int64_t rows = 64, ldx = cols + 5, ldq = 128;
        const auto x = fftest::random_vector(rows * ldx, 950 + cols, 4.0f), shift = fftest::random_vector(cols, 951);
        std::vector<int8_t> a(rows * ldq, 7), b(rows * ldq, 7);
        const float sa = ff::cpu::quantizeBlockScalar(x.data(), ldx, rows, cols, shifted ? shift.data() : nullptr, a.data(), ldq);
        const float sb = block(x.data(), ldx, rows, cols, shifted ? shift.data() : nullptr, b.data(), ldq);
        CHECK_MSG(sa == sb && a == b, "variant " << static_cast<int>(variant) << " cols " << cols << " shifted " << shifted);
      }
    }
  }
}
