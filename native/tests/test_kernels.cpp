#include <cmath>
#include <vector>

#include "harness.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vmath.h"

using fftest::random_vector;

TEST(gemm_variants_match_reference_on_edge_shapes) {
  struct Case { int64_t M, N, K; bool bias, acc; };
  const Case cases[] = {{1, 1, 1, false, false}, {13, 37, 19, true, false}, {50, 70, 300, true, true},
                        {96, 64, 256, false, false}, {130, 33, 517, true, false}, {7, 1000, 64, false, true}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    auto A = random_vector(c.M * (c.K + 3), seed++);
    auto B = random_vector(c.N * (c.K + 1), seed++);
    auto bias = random_vector(c.N, seed++);
    auto C0 = random_vector(c.M * (c.N + 2), seed++);
    ff::GemmArgs g{c.M, c.N, c.K, A.data(), c.K + 3, B.data(), c.K + 1, nullptr, c.N + 2, c.bias ? bias.data() : nullptr, c.acc};
    std::vector<float> ref = C0;
    g.C = ref.data();
    ff::gemm_nt_reference(g);
    for (ff::Variant v : ff::gemm_variants()) {
      if (ff::variant_score(v) == 0) continue;
      std::vector<float> out = C0;
      g.C = out.data();
      ff::gemm_nt_variant(v, g);
      double err = fftest::rel_l2(out.data(), ref.data(), out.size());
      CHECK_MSG(err < 1e-5, ff::variant_name(v) << " M=" << c.M << " N=" << c.N << " K=" << c.K << " relL2=" << err);
    }
    std::vector<float> out = C0;
    g.C = out.data();
    ff::gemm_nt(g);
    CHECK(fftest::rel_l2(out.data(), ref.data(), out.size()) < 1e-5);
  }
}

TEST(exp_fast_is_accurate_over_its_range) {
  double worst = 0;
  for (float x = -80.f; x < 80.f; x += 0.01237f) worst = std::max(worst, std::fabs(ff::exp_fast(x) / std::exp(double(x)) - 1.0));
  CHECK_MSG(worst < 5e-7, "worst relative error " << worst);
}

TEST(attention_dense_matches_reference_with_and_without_mask) {
  // Long key sets (64-key blocks) and short ones (one 16-key block, as the text's; with head dims
  // of whole 16-float vectors they take the register kernel on AVX-512). masked: 1 = keys from 5
  // on, 2 = every key (the rows get zeros).
  struct Case { int masked; int64_t nk, hd; };
  for (Case c : {Case{0, 131, 24}, Case{1, 16, 24}, Case{0, 7, 24}, Case{0, 16, 24}, Case{0, 17, 24}, Case{1, 16, 64},
                 Case{0, 7, 64}, Case{0, 16, 32}, Case{2, 9, 64}}) {
    const int masked = c.masked;
    const int64_t nq = 45, nk = c.nk, heads = 3, hd = c.hd, stride = heads * hd + 5;
    auto q = random_vector(nq * stride, 11 + masked, 2.0f), k = random_vector(nk * stride, 12, 2.0f), v = random_vector(nk * stride, 13);
    std::vector<uint8_t> mask(nk, 1);
    if (masked)
      for (int64_t j = masked == 2 ? 0 : 5; j < nk; ++j) mask[j] = 0;
    std::vector<float> out(nq * heads * hd, 7.0f), ref(nq * heads * hd, 7.0f);  // every output is written
    ff::AttentionArgs a{nq, nk, heads, hd, q.data(), stride, k.data(), stride, v.data(), stride, out.data(), heads * hd,
                        masked ? mask.data() : nullptr, 1.0f / std::sqrt(float(hd))};
    ff::attention_dense(a);
    a.out = ref.data();
    ff::attention_reference(a);
    if (masked == 2) {
      for (float x : out) CHECK(x == 0.0f);
      for (float x : ref) CHECK(x == 0.0f);
      continue;
    }
    double err = fftest::rel_l2(out.data(), ref.data(), out.size());
    CHECK_MSG(err < 1e-5, "masked=" << masked << " nk=" << nk << " hd=" << hd << " relL2=" << err);
    if (ff::variant_score(ff::Variant::Avx512) > 0) {
      a.out = out.data();
      ff::attention_dense_variant(ff::Variant::Scalar, a);
      CHECK(fftest::rel_l2(out.data(), ref.data(), out.size()) < 1e-5);
    }
  }
}

TEST(norms_and_activations_match_references) {
  const int64_t rows = 37, dim = 96;
  auto x = random_vector(rows * dim, 21, 3.0f), w = random_vector(dim, 22), b = random_vector(dim, 23);
  std::vector<float> y(x.size()), r(x.size());
  ff::layer_norm(x.data(), y.data(), rows, dim, w.data(), b.data(), 1e-5f);
  ff::layer_norm_ref(x.data(), r.data(), rows, dim, w.data(), b.data(), 1e-5f);
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5);
  ff::layer_norm(x.data(), y.data(), rows, dim, nullptr, nullptr, 1e-6f);
  ff::layer_norm_ref(x.data(), r.data(), rows, dim, nullptr, nullptr, 1e-6f);
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5);
  ff::rms_norm(x.data(), y.data(), rows, dim, w.data(), 1e-6f);
  ff::rms_norm_ref(x.data(), r.data(), rows, dim, w.data(), 1e-6f);
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5);
  ff::channel_rms_norm(x.data(), y.data(), dim, rows, w.data(), 1e-6f);
  ff::channel_rms_norm_ref(x.data(), r.data(), dim, rows, w.data(), 1e-6f);
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5);
  y = x;
  r = x;
  ff::gelu_inplace(y.data(), y.size());
  ff::gelu_ref(r.data(), r.size());
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-6);
  y = x;
  r = x;
  ff::silu_inplace(y.data(), y.size());
  ff::silu_ref(r.data(), r.size());
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-6);
}

TEST(rope3d_matches_reference_and_preserves_norms) {
  const int64_t heads = 2, hd = 28, stride = heads * hd;
  ff::RopeGrid grid{3, 4, 5};
  auto x = random_vector(60 * stride, 31);
  auto y = x, r = x;
  ff::rope3d(y.data(), stride, heads, hd, grid, 10000.0);
  ff::rope3d_ref(r.data(), stride, heads, hd, grid, 10000.0);
  CHECK(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5);
  // token 0 sits at position (0, 0, 0): no rotation
  for (int64_t i = 0; i < stride; ++i) CHECK(y[i] == x[i]);
  double n0 = 0, n1 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    n0 += double(x[i]) * x[i];
    n1 += double(y[i]) * y[i];
  }
  CHECK(std::fabs(n0 - n1) / n0 < 1e-5);
}

TEST(gelu_matches_reference_over_a_wide_range_and_ragged_lengths) {
  // Lengths off the 16-lane vectors, values from deep negative (gelu -> 0) to large (-> x).
  for (int64_t n : {1, 15, 17, 1000, 4099}) {
    auto x = random_vector(n, 600 + n, 12.0f);
    if (n > 3) {
      x[0] = -200.f;
      x[1] = 200.f;
      x[2] = 0.f;
    }
    std::vector<float> y = x, r = x;
    ff::gelu_inplace(y.data(), n);
    ff::gelu_ref(r.data(), n);
    // Near gelu's zero on the negative side 1 - tanh cancels, so the bound is absolute there.
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(y[i]) - r[i]) / (1.0 + std::fabs(double(x[i]))));
    CHECK_MSG(fftest::rel_l2(y.data(), r.data(), n) < 1e-6 && worst < 1e-6, "n " << n << " worst error " << worst);
  }
}

TEST(layer_norm_modulate_matches_reference_then_modulation) {
  // Row widths below, at and off the 16-lane blocks; with and without affine weights.
  for (int64_t dim : {5, 16, 192, 203}) {
    const int64_t rows = 37;
    auto x = random_vector(rows * dim, 500 + dim), w = random_vector(dim, 501), b = random_vector(dim, 502);
    auto shift = random_vector(dim, 503), scale = random_vector(dim, 504);
    std::vector<float> y(x.size()), r(x.size());
    for (bool affine : {false, true}) {
      const float* wp = affine ? w.data() : nullptr;
      const float* bp = affine ? b.data() : nullptr;
      ff::layer_norm_modulate(x.data(), y.data(), rows, dim, wp, bp, shift.data(), scale.data(), 1e-6f);
      ff::layer_norm_ref(x.data(), r.data(), rows, dim, wp, bp, 1e-6f);
      for (int64_t i = 0; i < rows * dim; ++i) r[i] = float(double(r[i]) * (1.0 + scale[i % dim]) + shift[i % dim]);
      CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5, "dim " << dim << " affine " << affine);
      ff::rms_norm(x.data(), y.data(), rows, dim, wp, 1e-6f);
      ff::rms_norm_ref(x.data(), r.data(), rows, dim, wp, 1e-6f);
      CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5, "rms dim " << dim);
    }
    std::vector<float> acc = x, want(x.size());
    ff::add_gated(acc.data(), y.data(), rows, dim, scale.data());
    for (int64_t i = 0; i < rows * dim; ++i) want[i] = x[i] + scale[i % dim] * y[i];
    CHECK(fftest::rel_l2(acc.data(), want.data(), acc.size()) < 1e-6);
  }
}

TEST(conv3d_matches_reference_for_each_kernel_shape) {
  struct Case { int64_t ci, co, t, h, w, kt, kh, kw; };
  const Case cases[] = {{3, 5, 4, 6, 7, 3, 3, 3}, {4, 8, 2, 5, 5, 1, 1, 1}, {6, 3, 3, 8, 4, 1, 3, 3}};
  uint64_t seed = 40;
  for (const Case& c : cases) {
    ff::Conv3dShape s{c.ci, c.co, c.t, c.h, c.w, c.kt, c.kh, c.kw};
    auto x = random_vector(c.ci * c.t * c.h * c.w, seed++), w = random_vector(c.co * c.ci * c.kt * c.kh * c.kw, seed++);
    auto bias = random_vector(c.co, seed++);
    std::vector<float> y(c.co * c.t * c.h * c.w), r(y.size());
    ff::conv3d(s, x.data(), w.data(), bias.data(), y.data());
    ff::conv3d_ref(s, x.data(), w.data(), bias.data(), r.data());
    CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5, "kt=" << c.kt << " kh=" << c.kh);
  }
}

TEST(conv3d_direct_and_im2col_match_reference_on_vae_shapes) {
  // Widths below, at and past one and two 8- and 16-float vectors (so every tail of the AVX2 and
  // AVX-512 row kernels); channel counts off the blocks of 4 and 8; causal 3x3x3, 2x3x3, spatial
  // 1x3x3, 3x3x1, 1x1x3 and pointwise kernels. Each direct build the CPU can run is checked.
  struct Case { int64_t ci, co, t, h, w, kt, kh, kw; };
  const Case cases[] = {{8, 64, 3, 4, 16, 3, 3, 3}, {16, 8, 2, 3, 64, 3, 3, 3}, {8, 3, 2, 5, 33, 1, 3, 3},
                        {5, 9, 3, 3, 47, 3, 3, 3},  {7, 17, 1, 2, 1, 1, 3, 3},  {3, 2, 2, 2, 80, 3, 1, 3},
                        {4, 6, 2, 3, 20, 1, 1, 1},  {6, 13, 3, 3, 12, 3, 3, 3}, {3, 5, 3, 3, 24, 2, 3, 3},
                        {9, 7, 2, 4, 29, 1, 1, 3},  {4, 11, 4, 2, 58, 3, 3, 1}, {1, 12, 2, 3, 7, 3, 3, 3},
                        {2, 4, 1, 2, 40, 1, 1, 1}};
  using DirectFn = void (*)(const ff::Conv3dShape&, const float*, const float*, const float*, float*);
  struct Direct { ff::Variant v; DirectFn fn; };
  const Direct directs[] = {{ff::Variant::Avx512, ff::conv3d_direct_avx512},
                            {ff::Variant::Avx2, ff::conv3d_direct_avx2}};
  // Where AVX2 runs, conv3d must take a direct build rather than im2col.
  CHECK(ff::conv3d_direct_available() == (ff::variant_score(ff::Variant::Avx2) > 0));
  uint64_t seed = 400;
  for (const Case& c : cases) {
    ff::Conv3dShape s{c.ci, c.co, c.t, c.h, c.w, c.kt, c.kh, c.kw};
    auto x = random_vector(c.ci * c.t * c.h * c.w, seed++), w = random_vector(c.co * c.ci * c.kt * c.kh * c.kw, seed++);
    auto bias = random_vector(c.co, seed++);
    std::vector<float> r(c.co * c.t * c.h * c.w), r0(r.size()), y(r.size(), -7.f);
    ff::conv3d_ref(s, x.data(), w.data(), bias.data(), r.data());
    ff::conv3d_ref(s, x.data(), w.data(), nullptr, r0.data());
    ff::conv3d_im2col(s, x.data(), w.data(), bias.data(), y.data());
    CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5, "im2col w=" << c.w << " co=" << c.co);
    std::fill(y.begin(), y.end(), -7.f);
    ff::conv3d(s, x.data(), w.data(), bias.data(), y.data());
    CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5, "conv3d w=" << c.w << " co=" << c.co);
    for (const Direct& d : directs) {
      if (ff::variant_score(d.v) == 0) continue;
      std::fill(y.begin(), y.end(), -7.f);
      d.fn(s, x.data(), w.data(), bias.data(), y.data());
      CHECK_MSG(fftest::rel_l2(y.data(), r.data(), y.size()) < 1e-5,
                ff::variant_name(d.v) << " direct w=" << c.w << " co=" << c.co << " kt=" << c.kt);
      std::fill(y.begin(), y.end(), -7.f);
      d.fn(s, x.data(), w.data(), nullptr, y.data());
      CHECK_MSG(fftest::rel_l2(y.data(), r0.data(), y.size()) < 1e-5,
                ff::variant_name(d.v) << " direct without bias w=" << c.w);
    }
  }
}

TEST(gemm_bf16_matches_its_reference_and_tracks_fp32) {
  if (!ff::gemm_bf16_available()) return;  // needs AVX-512 BF16
  struct Case { int64_t M, N, K; };
  for (Case c : {Case{1, 5, 3}, Case{13, 37, 19}, Case{100, 70, 301}, Case{576, 96, 384}}) {
    auto x = random_vector(c.M * c.K, 71), w = random_vector(c.N * c.K, 72), bias = random_vector(c.N, 73);
    std::vector<float> y(c.M * c.N), ref(c.M * c.N), fp32(c.M * c.N);
    ff::gemm_bf16(x.data(), c.M, ff::pack_bf16_weight(w.data(), c.N, c.K), bias.data(), y.data());
    ff::gemm_bf16_reference(x.data(), c.M, w.data(), c.N, c.K, bias.data(), ref.data());
    ff::GemmArgs g{c.M, c.N, c.K, x.data(), c.K, w.data(), c.K, fp32.data(), c.N, bias.data(), false};
    ff::gemm_nt_reference(g);
    double err = fftest::rel_l2(y.data(), ref.data(), y.size()), vs_fp32 = fftest::rel_l2(y.data(), fp32.data(), y.size());
    CHECK_MSG(err < 1e-5, "M=" << c.M << " N=" << c.N << " K=" << c.K << " relL2 vs bf16 reference " << err);
    CHECK_MSG(vs_fp32 < 1e-2 && vs_fp32 > 0, "relL2 vs fp32 " << vs_fp32);
  }
}
