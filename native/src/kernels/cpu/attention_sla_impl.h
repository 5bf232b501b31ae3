// The fast SLA path (attention_sla.h), compiled once per instruction set: attention_sla.cpp
// (baseline x86-64), attention_sla_avx2.cpp (AVX2 + FMA, 8 lanes) and attention_sla_avx512.cpp
// (AVX-512; the plain loops below vectorise 16 lanes wide there). The sparse branch is
// sageQueryBlock on the requested variant.
//
// Linear branch, per head, with vp_j = proj_l v_j (v projected once per token):
//   G_b = sum_{j in block b} phi(k~_j) vp_j^T  [hd, hd],  z_b = sum_{j in b} phi(k~_j)  [hd]
//   for query block q: G_R = sum_b G_b - sum_{b selected} G_b (likewise z_R), and each query row
//   gets  phi(q)^T G_R / (phi(q) . z_R + eps),  which equals o_l proj_l^T of docs/MODEL.md
// since proj_l is linear: no per-query-block GEMM remains, only [64, hd] x [hd, hd] loops.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <vector>

#include "kernels/cpu/attention_sage.h"
#include "kernels/cpu/attention_sla.h"
#include "kernels/cpu/vmath.h"
#if defined(__AVX512F__)
#include "kernels/cpu/sage_softmax_avx512.h"
#endif

// Internal linkage on purpose (see gemm_driver.h): each file compiles its own copy.
namespace ff::cpu::sla_detail {
namespace {

constexpr float kLinearEps = 1e-5f;

// The build's native float vector: 16 lanes with AVX-512, 8 with AVX2, 4 otherwise (GCC lowers a
// vector wider than the registers through memory, so the kernels below never use one).
#if defined(__AVX512F__)
constexpr int kVecW = 16;
#elif defined(__AVX__)
constexpr int kVecW = 8;
#else
constexpr int kVecW = 4;
#endif
typedef float VecW __attribute__((vector_size(kVecW * 4), aligned(4)));
constexpr int kRowVecs = 64 / kVecW;  // VecW per row of the family's head dim, 64

// Horizontal max and sum of a native vector. AVX-512 reduces in a tree of shuffles (four
// dependent steps instead of fifteen scalar ones); other builds combine the lanes in order.
#if defined(__AVX512F__)
inline __m512 asM512(VecW v) {
  __m512 x;
  std::memcpy(&x, &v, sizeof x);
  return x;
}
inline float laneMax(VecW v) { return _mm512_reduce_max_ps(asM512(v)); }
inline float laneSum(VecW v) { return _mm512_reduce_add_ps(asM512(v)); }
#else
inline float laneMax(VecW v) {
  float m = v[0];
  for (int l = 1; l < kVecW; ++l) m = v[l] > m ? v[l] : m;
  return m;
}
inline float laneSum(VecW v) {
  float sum = 0.0f;
  for (int l = 0; l < kVecW; ++l) sum += v[l];
  return sum;
}
#endif

// e^x for x <= 0 (a softmax's shifted logits). AVX-512 takes Sage's exp2 (range reduction with
// vroundscaleps, a degree-6 polynomial, vscalefps: about ten instructions where exp_fast's clamps,
// shifter and bit tricks take eighteen); other builds exp_fast.
template <class V>  // V = VecW; a template so the 4-lane baseline build, which never calls it, does not instantiate it
inline V expNonPositive(V x) {
#if defined(__AVX512F__)
  const __m512 e = exp2Avx512(_mm512_mul_ps(asM512(x), _mm512_set1_ps(1.4426950408889634f)));
  V out;
  std::memcpy(&out, &e, sizeof out);
  return out;
#else
  return exp_fast_t(x);
#endif
}

// phi(x) = softmax over the n channels of x - shift (shift may be null), exp_fast. The max and
// the sum run in 16 independent lanes so they vectorise without reassociating flags. n = 64 (the
// family's head dim) runs on native vectors held in registers and reduces them with laneMax and
// laneSum.
inline void softmaxFast(const float* x, const float* shift, int64_t n, float* out) {
  constexpr int64_t L = 16;
  if constexpr (kVecW >= 8) {  // vmath.h's exp has 8- and 16-lane forms
    if (n == 64) {
      constexpr int G = L / kVecW;  // native vectors per 16 lanes
      VecW v[kRowVecs];
      for (int i = 0; i < kRowVecs; ++i) {
        std::memcpy(&v[i], x + i * kVecW, sizeof(VecW));
        if (shift) {
          VecW sh;
          std::memcpy(&sh, shift + i * kVecW, sizeof(VecW));
          v[i] -= sh;
        }
      }
      VecW m = v[0];
      for (int i = 1; i < kRowVecs; ++i) m = m > v[i] ? m : v[i];
      const float mx = laneMax(m);
      VecW acc[G] = {};
      for (int i = 0; i < kRowVecs; ++i) {
        v[i] = expNonPositive(v[i] - mx);
        acc[i % G] += v[i];
      }
      VecW total = acc[0];
      for (int g = 1; g < G; ++g) total += acc[g];
      const float inv = 1.0f / laneSum(total);
      for (int i = 0; i < kRowVecs; ++i) {
        const VecW o = v[i] * inv;
        std::memcpy(out + i * kVecW, &o, sizeof(VecW));
      }
      return;
    }
  }
  float lane[L];
  for (int64_t c = 0; c < n; ++c) out[c] = shift ? x[c] - shift[c] : x[c];
  for (int64_t l = 0; l < L; ++l) lane[l] = -INFINITY;
  int64_t c = 0;
  for (; c + L <= n; c += L)
    for (int64_t l = 0; l < L; ++l) lane[l] = out[c + l] > lane[l] ? out[c + l] : lane[l];
  float mx = -INFINITY;
  for (; c < n; ++c) mx = out[c] > mx ? out[c] : mx;
  for (int64_t l = 0; l < L; ++l) mx = lane[l] > mx ? lane[l] : mx;
  // The exponentials on Vec8f (a float loop over exp_fast does not vectorise, vmath.h), the sums in
  // the same 16 lanes.
  Vec8f acc[L / 8] = {};
  for (c = 0; c + L <= n; c += L)
    for (int64_t g = 0; g < L / 8; ++g) {
      Vec8f v;
      std::memcpy(&v, out + c + 8 * g, sizeof v);
      v = exp_fast_t(v - mx);
      std::memcpy(out + c + 8 * g, &v, sizeof v);
      acc[g] += v;
    }
  float sum = 0.0f;
  for (; c < n; ++c) {
    out[c] = exp_fast(out[c] - mx);
    sum += out[c];
  }
  for (int64_t l = 0; l < L; ++l) sum += acc[l / 8][l % 8];
  const float inv = 1.0f / sum;
  for (c = 0; c < n; ++c) out[c] *= inv;
}

// out[0, n) = sum_{i < m} x[i * stride_x] * rows[i * n, +n). For n = HD = 64 the accumulator is
// one 64-float row of native vectors, in registers; HD 0 takes n at run time (n <= 256) with plain
// loops.
template <int HD>
inline void combineRows(const float* x, int64_t m, const float* rows, int64_t n, int64_t stride_x, float* out) {
  if constexpr (HD == 64) {
    (void)n;
    VecW a[kRowVecs] = {};
    for (int64_t i = 0; i < m; ++i) {
      const float s = x[i * stride_x];
      const VecW* r = reinterpret_cast<const VecW*>(rows + i * 64);
      for (int v = 0; v < kRowVecs; ++v) a[v] += s * r[v];
    }
    VecW* o = reinterpret_cast<VecW*>(out);
    for (int v = 0; v < kRowVecs; ++v) o[v] = a[v];
  } else {
    float acc[kSageMaxHeadDim];
    for (int64_t d = 0; d < n; ++d) acc[d] = 0.0f;
    for (int64_t i = 0; i < m; ++i) {
      const float s = x[i * stride_x];
      const float* r = rows + i * n;
      for (int64_t d = 0; d < n; ++d) acc[d] += s * r[d];
    }
    for (int64_t d = 0; d < n; ++d) out[d] = acc[d];
  }
}

// Four combineRows<64> at once, sharing each row load: out + j * oj receives
// sum_i x[j * xj + i * stride_x] * rows[i * 64, +64) for j < 4. The columns run in chunks of
// kCombineVecs vectors so that the 4 x chunk accumulators stay in registers (the whole row in 16 of
// AVX-512's 32; 16 columns, 8 of AVX2's 16 ymm). Each output is the same sum in the same order.
constexpr int kCombineVecs = kVecW == 16 ? 4 : 2;
inline void combineRows4x64(const float* x, int64_t xj, int64_t m, const float* rows, int64_t stride_x, float* out,
                            int64_t oj) {
  for (int c0 = 0; c0 < kRowVecs; c0 += kCombineVecs) {
    VecW a[4][kCombineVecs] = {};
    for (int64_t i = 0; i < m; ++i) {
      const VecW* r = reinterpret_cast<const VecW*>(rows + i * 64) + c0;
      VecW rv[kCombineVecs];
      for (int v = 0; v < kCombineVecs; ++v) rv[v] = r[v];
      for (int j = 0; j < 4; ++j) {
        const float s = x[j * xj + i * stride_x];
        for (int v = 0; v < kCombineVecs; ++v) a[j][v] += s * rv[v];
      }
    }
    for (int j = 0; j < 4; ++j) {
      VecW* o = reinterpret_cast<VecW*>(out + j * oj) + c0;
      for (int v = 0; v < kCombineVecs; ++v) o[v] = a[j][v];
    }
  }
}

// sum[c] += x[r * ld + c] for rows [0, rows) and columns [0, cols): each column's double sum in
// row order. With AVX-512 and 64 columns the 64 sums stay in eight registers across the rows (a
// sum kept in memory waits for its own store on every row), the same additions in the same order.
inline void addColumnsDouble(const float* x, int64_t ld, int64_t rows, int64_t cols, double* sum) {
#if defined(__AVX512F__)
  if (cols == 64) {
    __m512d a0 = _mm512_loadu_pd(sum), a1 = _mm512_loadu_pd(sum + 8), a2 = _mm512_loadu_pd(sum + 16),
            a3 = _mm512_loadu_pd(sum + 24), a4 = _mm512_loadu_pd(sum + 32), a5 = _mm512_loadu_pd(sum + 40),
            a6 = _mm512_loadu_pd(sum + 48), a7 = _mm512_loadu_pd(sum + 56);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * ld;
      a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(row)));
      a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(row + 8)));
      a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(row + 16)));
      a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(row + 24)));
      a4 = _mm512_add_pd(a4, _mm512_cvtps_pd(_mm256_loadu_ps(row + 32)));
      a5 = _mm512_add_pd(a5, _mm512_cvtps_pd(_mm256_loadu_ps(row + 40)));
      a6 = _mm512_add_pd(a6, _mm512_cvtps_pd(_mm256_loadu_ps(row + 48)));
      a7 = _mm512_add_pd(a7, _mm512_cvtps_pd(_mm256_loadu_ps(row + 56)));
    }
    _mm512_storeu_pd(sum, a0);
    _mm512_storeu_pd(sum + 8, a1);
    _mm512_storeu_pd(sum + 16, a2);
    _mm512_storeu_pd(sum + 24, a3);
    _mm512_storeu_pd(sum + 32, a4);
    _mm512_storeu_pd(sum + 40, a5);
    _mm512_storeu_pd(sum + 48, a6);
    _mm512_storeu_pd(sum + 56, a7);
    return;
  }
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ld;
    for (int64_t c = 0; c < cols; ++c) sum[c] += row[c];
  }
}

// slaSelectBlocks (attention_sla.h), compiled once per instruction set with the same result in
// each: the pooled means are double sums of floats in row order per channel (the loops run across
// channels, so they vectorise), and each score sums over channels, in channel order, products of two
// floats, which are exact in double, so fused and separate multiply-adds give the same bits. The
// scores of one query block run across key blocks (the keys' pooled means stored transposed),
// eight per register on AVX-512. For kc <= 16 the top kc are taken by insertion, which keeps the
// order a stable descending sort gives (ties to the lower block index).
inline std::vector<int32_t> selectBlocks(const AttentionArgs& a, int64_t head, const float* kMean, int64_t kc) {
  const int64_t hd = a.head_dim;
  const int64_t nbq = (a.q_len + kSlaBlock - 1) / kSlaBlock, nbk = (a.kv_len + kSlaBlock - 1) / kSlaBlock;
  std::vector<double> sum(static_cast<size_t>(hd)), score(static_cast<size_t>(nbk));
  // Mean of block b's rows of x (stride ld, n rows) minus shift -> out[c * outStride].
  auto pool = [&](const float* x, int64_t ld, int64_t n, int64_t b, const float* shift, float* out, int64_t outStride) {
    const int64_t r0 = b * kSlaBlock, r1 = std::min(n, r0 + kSlaBlock);
    std::fill(sum.begin(), sum.end(), 0.0);
    addColumnsDouble(x + r0 * ld, ld, r1 - r0, hd, sum.data());
    for (int64_t c = 0; c < hd; ++c)
      out[c * outStride] =
          static_cast<float>(sum[static_cast<size_t>(c)] / static_cast<double>(r1 - r0) - (shift ? shift[c] : 0.0f));
  };
  std::vector<float> qp(static_cast<size_t>(nbq * hd)), kpT(static_cast<size_t>(hd * nbk));  // kpT[c, j]
  for (int64_t b = 0; b < nbq; ++b) pool(a.q + head * hd, a.q_stride, a.q_len, b, nullptr, qp.data() + b * hd, 1);
  for (int64_t b = 0; b < nbk; ++b) pool(a.k + head * hd, a.k_stride, a.kv_len, b, kMean, kpT.data() + b, nbk);
  std::vector<int32_t> selected(static_cast<size_t>(nbq * kc)), order(static_cast<size_t>(nbk));
  std::vector<float> rounded(static_cast<size_t>(nbk));
  for (int64_t b = 0; b < nbq; ++b) {
    const float* qb = qp.data() + b * hd;
    int64_t j0 = 0;
#if defined(__AVX512F__)
    // Eight key blocks per pass with their sums in a register, channels in order.
    for (; j0 < nbk; j0 += 8) {
      const __mmask8 live = static_cast<__mmask8>((1u << std::min<int64_t>(8, nbk - j0)) - 1);
      __m512d acc = _mm512_setzero_pd();
      for (int64_t c = 0; c < hd; ++c)
        acc = _mm512_fmadd_pd(_mm512_set1_pd(qb[c]), _mm512_cvtps_pd(_mm256_maskz_loadu_ps(live, kpT.data() + c * nbk + j0)), acc);
      _mm512_mask_storeu_pd(score.data() + j0, live, acc);
    }
#endif
    for (int64_t j = j0; j < nbk; ++j) score[static_cast<size_t>(j)] = 0.0;
    for (int64_t c = 0; c < hd && j0 < nbk; ++c) {
      const double qc = qb[c];
      const float* kRow = kpT.data() + c * nbk;
      for (int64_t j = j0; j < nbk; ++j) score[static_cast<size_t>(j)] += qc * kRow[j];
    }
    for (int64_t j = 0; j < nbk; ++j) rounded[static_cast<size_t>(j)] = static_cast<float>(score[static_cast<size_t>(j)]);
    int32_t* row = selected.data() + b * kc;
    if (kc <= 16) {
      // The first kc of a stable descending sort, by insertion: a block enters ahead of those it
      // beats strictly, so ties keep the lower index first.
      int64_t n = 0;
      for (int64_t j = 0; j < nbk; ++j) {
        const float x = rounded[static_cast<size_t>(j)];
        if (n == kc && !(x > rounded[static_cast<size_t>(row[kc - 1])])) continue;
        int64_t at = n < kc ? n++ : kc - 1;
        for (; at > 0 && x > rounded[static_cast<size_t>(row[at - 1])]; --at) row[at] = row[at - 1];
        row[at] = static_cast<int32_t>(j);
      }
    } else {
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
        return rounded[static_cast<size_t>(x)] > rounded[static_cast<size_t>(y)];
      });
      std::copy(order.begin(), order.begin() + kc, row);
    }
    std::sort(row, row + kc);
  }
  return selected;
}

// Scratch that lives as long as the calling thread, so a forward allocates (and page-faults)
// once instead of once per layer.
inline std::vector<float>& scratch(int slot, size_t n) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b;
}

void slaAttentionImpl(const AttentionArgs& a, const SlaOptions& options, Variant variant, bool linear) {
  const int64_t hd = a.head_dim, hh = hd * hd;
  const int64_t nb = (a.kv_len + kSlaBlock - 1) / kSlaBlock;
  const int64_t kc = slaSelectedCount(options.topK, nb);

  // Heads kept per calling thread so their buffers are reused from layer to layer. Preparation
  // runs as heads x {Q, K, V} tasks and selection per head, so 3 heads keep 2 threads busy.
  thread_local std::vector<SageHead> perThread;
  std::vector<SageHead>& heads = perThread;  // a reference, so worker threads see this thread's
  heads.resize(static_cast<size_t>(a.heads));
  std::vector<std::vector<int32_t>> selected(static_cast<size_t>(a.heads));
  parallelChunks(a.heads, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) prepareSageHeadMeta(a, h, variant, heads[static_cast<size_t>(h)]);
  });
  constexpr SagePart kParts[3] = {SagePart::Q, SagePart::K, SagePart::V};
  float* gBlk = nullptr;  // [heads, nb, hd, hd]
  float* zBlk = nullptr;  // [heads, nb, hd]
  std::vector<float> gAll, zAll, projT;
  // The fp16 products of the linear branch (AVX-512 builds on CPUs with AVX512-FP16, head dim 64).
#if defined(__AVX512F__)
  const bool fp16 = linear && hd == 64 && slaLinearFp16Enabled();
  alignas(64) uint16_t projPacked[64 * 64];
  float projMax = 0.0f;
#endif
  if (linear) {
    gBlk = scratch(0, static_cast<size_t>(a.heads * nb * hh)).data();
    zBlk = scratch(1, static_cast<size_t>(a.heads * nb * hd)).data();
    projT.resize(static_cast<size_t>(hh));  // projT[f, d] = proj_l[d, f]
    for (int64_t d = 0; d < hd; ++d)
      for (int64_t f = 0; f < hd; ++f) projT[static_cast<size_t>(f * hd + d)] = options.projL[d * hd + f];
#if defined(__AVX512F__)
    if (fp16) projMax = packVFp16(projT.data(), 64, 64, 64, 64, 64, projPacked);
#endif
  }
  // Linear-branch state of key block t (of heads x nb): phi [rows, hd] = phi(k~), vp [rows, hd]
  // = v proj_l^T, then G = phi^T vp row by row and z = column sums of phi.
  auto blockState = [&](int64_t t, std::vector<float>& phi, std::vector<float>& vp) {
    const int64_t h = t / nb, blk = t % nb;
    float* g = gBlk + t * hh;
    float* z = zBlk + t * hd;
    const int64_t rows = std::min(kSlaBlock, a.kv_len - blk * kSlaBlock);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t j = blk * kSlaBlock + r;
      softmaxFast(a.k + j * a.k_stride + h * hd, heads[static_cast<size_t>(h)].kMean.data(), hd, phi.data() + r * hd);
    }
    const float* v0 = a.v + blk * kSlaBlock * a.v_stride + h * hd;
    if (hd == 64) {
      int64_t r = 0;
      for (; r + 4 <= rows; r += 4) {
#if defined(__AVX512F__)
        if (fp16 && slaCombine4x64Fp16(v0 + r * a.v_stride, a.v_stride, projPacked, projMax, vp.data() + r * hd, hd))
          continue;
#endif
        combineRows4x64(v0 + r * a.v_stride, a.v_stride, hd, projT.data(), 1, vp.data() + r * hd, hd);
      }
      for (; r < rows; ++r) combineRows<64>(v0 + r * a.v_stride, hd, projT.data(), hd, 1, vp.data() + r * hd);
      for (int64_t c = 0; c < hd; c += 4) combineRows4x64(phi.data() + c, 1, rows, vp.data(), hd, g + c * hd, hd);
    } else {
      for (int64_t r = 0; r < rows; ++r) combineRows<0>(v0 + r * a.v_stride, hd, projT.data(), hd, 1, vp.data() + r * hd);
      for (int64_t c = 0; c < hd; ++c) combineRows<0>(phi.data() + c, rows, vp.data(), hd, hd, g + c * hd);
    }
    std::fill(z, z + hd, 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < hd; ++c) z[c] += phi[static_cast<size_t>(r * hd + c)];
  };
  // One pass for both (each needs only the key means): the heads x {Q, K, V, selection}
  // preparation tasks interleaved with groups of key blocks, so every chunk the pool hands out
  // mixes the two and one thread-pool round trip covers them.
  const int64_t prepTasks = a.heads * 4, blockTasks = linear ? a.heads * nb : 0;
  const int64_t groups = blockTasks > 0 ? prepTasks : 0, perGroup = groups > 0 ? (blockTasks + groups - 1) / groups : 0;
  parallelChunks(prepTasks + groups, [&](int64_t b, int64_t e) {
    std::vector<float> phi, vp;
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = groups > 0 ? t / 2 : t;
      if (groups == 0 || t % 2 == 0) {
        const int64_t h = slot / 4, part = slot % 4;
        SageHead& sh = heads[static_cast<size_t>(h)];
        if (part < 3) prepareSageHeadPart(a, h, kParts[part], sh);
        else selected[static_cast<size_t>(h)] = selectBlocks(a, h, sh.kMean.data(), kc);
        continue;
      }
      if (phi.empty()) {
        phi.resize(static_cast<size_t>(kSlaBlock * hd));
        vp.resize(static_cast<size_t>(kSlaBlock * hd));
      }
      for (int64_t blk = slot * perGroup; blk < std::min(blockTasks, (slot + 1) * perGroup); ++blk) blockState(blk, phi, vp);
    }
  });

  if (linear) {
    gAll.assign(static_cast<size_t>(a.heads * hh), 0.0f);
    zAll.assign(static_cast<size_t>(a.heads * hd), 0.0f);
    for (int64_t h = 0; h < a.heads; ++h)
      for (int64_t blk = 0; blk < nb; ++blk) {
        const float* g = gBlk + (h * nb + blk) * hh;
        const float* z = zBlk + (h * nb + blk) * hd;
        float* ga = gAll.data() + h * hh;
        float* za = zAll.data() + h * hd;
        for (int64_t i = 0; i < hh; ++i) ga[i] += g[i];
        for (int64_t i = 0; i < hd; ++i) za[i] += z[i];
      }
  }

  parallelChunks(a.heads * nb, [&](int64_t b, int64_t e) {
    std::vector<float> gRest(static_cast<size_t>(hh)), zRest(static_cast<size_t>(hd));
    std::vector<float> phiQ(static_cast<size_t>(4 * hd)), num(static_cast<size_t>(4 * hd));
#if defined(__AVX512F__)
    alignas(64) uint16_t gRestPacked[64 * 64];
    float gRestMax = 0.0f;
#endif
    for (int64_t t = b; t < e; ++t) {
      const int64_t h = t / nb, qb = t % nb;
      const int32_t* sel = selected[static_cast<size_t>(h)].data() + qb * kc;
      float* out = a.out + qb * kSlaBlock * a.out_stride + h * hd;
      sageQueryBlock(heads[static_cast<size_t>(h)], qb, sel, kc, out, a.out_stride);
      if (!linear) continue;
      // G_R = G_all - sum of the selected blocks' G (each element's subtractions in selection
      // order), up to four blocks per pass over gRest, which is written once per pass.
      for (int64_t s0 = 0; s0 < kc; s0 += 4) {
        const float* src = s0 == 0 ? gAll.data() + h * hh : gRest.data();
        const float* g[4];
        const int64_t n = std::min<int64_t>(4, kc - s0);
        for (int64_t i = 0; i < 4; ++i) g[i] = gBlk + (h * nb + sel[s0 + std::min(i, n - 1)]) * hh;
        float* gr = gRest.data();
        if (n == 4) {
          // The four blocks as plain locals: read through the array, GCC reloaded each pointer
          // from the stack on every element.
          const float *g0 = g[0], *g1 = g[1], *g2 = g[2], *g3 = g[3];
          for (int64_t j = 0; j < hh; ++j) gr[j] = (((src[j] - g0[j]) - g1[j]) - g2[j]) - g3[j];
        } else {
          for (int64_t j = 0; j < hh; ++j) {
            float x = src[j];
            for (int64_t i = 0; i < n; ++i) x -= g[i][j];
            gr[j] = x;
          }
        }
      }
      std::copy_n(zAll.data() + h * hd, hd, zRest.begin());
      for (int64_t s = 0; s < kc; ++s) {
        const float* z = zBlk + (h * nb + sel[s]) * hd;
        for (int64_t j = 0; j < hd; ++j) zRest[static_cast<size_t>(j)] -= z[j];
      }
      const int64_t rows = std::min(kSlaBlock, a.q_len - qb * kSlaBlock);
      // Query rows in groups of 4 (one row at a time past the last whole group, or for a head
      // dim other than 64): phi(q), the numerators phi(q) G_R and denominators phi(q) . z_R.
      for (int64_t r0 = 0; r0 < rows;) {
        const int64_t group = hd == 64 && r0 + 4 <= rows ? 4 : 1;
        for (int64_t j = 0; j < group; ++j)
          softmaxFast(a.q + (qb * kSlaBlock + r0 + j) * a.q_stride + h * hd, nullptr, hd, phiQ.data() + j * hd);
        bool done = false;  // the numerators made on fp16 FMAs
#if defined(__AVX512F__)
        if (group == 4 && fp16) {
          if (r0 == 0) gRestMax = packVFp16(gRest.data(), 64, 64, 64, 64, 64, gRestPacked);
          done = slaCombine4x64Fp16(phiQ.data(), hd, gRestPacked, gRestMax, num.data(), hd);
        }
#endif
        if (!done) {
          if (group == 4) combineRows4x64(phiQ.data(), hd, hd, gRest.data(), 1, num.data(), hd);
          else if (hd == 64) combineRows<64>(phiQ.data(), hd, gRest.data(), hd, 1, num.data());
          else combineRows<0>(phiQ.data(), hd, gRest.data(), hd, 1, num.data());
        }
        for (int64_t j = 0; j < group; ++j) {
          const float* pq = phiQ.data() + j * hd;
          float den = kLinearEps;
          int64_t c = 0;
          if (hd == 64) {
            VecW lane = {};
            for (int v = 0; v < kRowVecs; ++v) {
              VecW x, z;
              std::memcpy(&x, pq + v * kVecW, sizeof x);
              std::memcpy(&z, zRest.data() + v * kVecW, sizeof z);
              lane += x * z;
            }
            den += laneSum(lane);
            c = hd;
          }
          float lane[16] = {};
          for (; c + 16 <= hd; c += 16)
            for (int64_t l = 0; l < 16; ++l) lane[l] += pq[c + l] * zRest[static_cast<size_t>(c + l)];
          for (; c < hd; ++c) den += pq[c] * zRest[static_cast<size_t>(c)];
          for (int64_t l = 0; l < 16; ++l) den += lane[l];
          const float inv = 1.0f / den;
          float* o = out + (r0 + j) * a.out_stride;
          const float* nj = num.data() + j * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] += nj[d] * inv;
        }
        r0 += group;
      }
    }
  });
}

}  // namespace
}  // namespace ff::cpu::sla_detail
