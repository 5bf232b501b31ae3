// The dense online-softmax kernel, compiled once per instruction set (attention_dense.cpp,
// attention_dense_avx2.cpp, attention_dense_avx512.cpp). Loops are written so the compiler
// vectorises them (the exponentials explicitly on Vec8f) without
// reassociating any reduction: scores over a block of keys are accumulated along the key axis
// from a transposed K block, and P·V along head_dim.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/vmath.h"

namespace ff {
namespace {  // internal linkage: one copy per instruction set

constexpr int64_t kQueryBlock = 32, kRows = 4;
// Keys per block: 64, or 16 when the whole key set fits in 16 (cross-attention to the text), so
// short key sets are not padded fourfold.
constexpr int64_t kKeyBlockLong = 64, kKeyBlockShort = 16;
static_assert(kQueryBlock % kRows == 0, "query blocks split into whole row groups");

// Scores and P·V for kRows queries at once: each K-column and V-row load feeds kRows FMAs.
// q: kRows query rows (pre-scaled, zero rows beyond the block), kt: transposed keys [hd, ...] with
// row stride kt_stride starting at this key block, v: key rows (stride v_stride), o: [kRows, hd]
// running outputs.
template <int64_t kKeyBlock>
inline void attention_rows(const float* __restrict q, int64_t hd, const float* __restrict kt, int64_t kt_stride, int64_t nk,
                           const uint8_t* mask,
                           const float* v, int64_t v_stride, float* __restrict o, float* row_max, float* row_sum) {
  alignas(64) float s[kRows][kKeyBlock];
#if defined(__AVX512F__)
  if constexpr (kKeyBlock == 16) {
    // One native vector of scores per row, in named registers over the whole head dim (the loop
    // below keeps s in memory here and reloads it per channel): the same sums in the same order.
    Vec16f s0 = {}, s1 = {}, s2 = {}, s3 = {};
    for (int64_t d = 0; d < hd; ++d) {
      Vec16f k;
      std::memcpy(&k, kt + d * kt_stride, sizeof k);
      s0 += q[d] * k;
      s1 += q[hd + d] * k;
      s2 += q[2 * hd + d] * k;
      s3 += q[3 * hd + d] * k;
    }
    std::memcpy(s[0], &s0, sizeof s0);
    std::memcpy(s[1], &s1, sizeof s1);
    std::memcpy(s[2], &s2, sizeof s2);
    std::memcpy(s[3], &s3, sizeof s3);
  } else
#endif
  {
    for (int r = 0; r < kRows; ++r)
      for (int64_t j = 0; j < kKeyBlock; ++j) s[r][j] = 0.f;
    for (int64_t d = 0; d < hd; ++d) {
      const float* __restrict kd = kt + d * kt_stride;
      const float q0 = q[d], q1 = q[hd + d], q2 = q[2 * hd + d], q3 = q[3 * hd + d];
      for (int64_t j = 0; j < kKeyBlock; ++j) {
        const float k = kd[j];
        s[0][j] += q0 * k;
        s[1][j] += q1 * k;
        s[2][j] += q2 * k;
        s[3][j] += q3 * k;
      }
    }
  }
  float correction[kRows];
  for (int r = 0; r < kRows; ++r) {
    float block_max = -INFINITY;
    for (int64_t j = 0; j < nk; ++j) {
      if (mask && !mask[j]) s[r][j] = -INFINITY;
      block_max = std::max(block_max, s[r][j]);
    }
    if (block_max == -INFINITY) {  // every key of the block masked: nothing to add
      correction[r] = 1.f;
      for (int64_t j = 0; j < kKeyBlock; ++j) s[r][j] = 0.f;
      continue;
    }
    const float new_max = std::max(row_max[r], block_max);
    correction[r] = row_max[r] == -INFINITY ? 0.f : exp_fast(row_max[r] - new_max);
    // Exponentials 8 keys at a time on Vec8f (a float loop over exp_fast does not vectorise,
    // vmath.h), branch-free; the sum follows.
    static_assert(kKeyBlock % 8 == 0, "key blocks are whole Vec8f");
    const Vec8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int64_t j = 0; j < kKeyBlock; j += 8) {
      Vec8f x;
      std::memcpy(&x, &s[r][j], sizeof x);
      const Vec8i live = (lane + static_cast<int32_t>(j) < static_cast<int32_t>(nk)) & (x != -INFINITY);
      const Vec8f p = exp_fast_t(live ? x - new_max : Vec8f{} - 87.0f);
      const Vec8f kept = live ? p : Vec8f{};
      std::memcpy(&s[r][j], &kept, sizeof kept);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < kKeyBlock; ++j) sum += s[r][j];
    row_sum[r] = row_sum[r] * correction[r] + sum;
    row_max[r] = new_max;
  }
  for (int r = 0; r < kRows; ++r)
    for (int64_t d = 0; d < hd; ++d) o[r * hd + d] *= correction[r];
  // P·V in column chunks of 16: the 4 x 16 outputs stay in registers across all keys, so each
  // V load feeds four FMAs and nothing is stored until the chunk is done.
  constexpr int64_t kChunk = 16;
  int64_t d0 = 0;
  for (; d0 + kChunk <= hd; d0 += kChunk) {
    float acc[kRows][kChunk];
    for (int r = 0; r < kRows; ++r)
      for (int64_t i = 0; i < kChunk; ++i) acc[r][i] = o[r * hd + d0 + i];
    for (int64_t j = 0; j < nk; ++j) {
      const float* __restrict vr = v + j * v_stride + d0;
      const float p0 = s[0][j], p1 = s[1][j], p2 = s[2][j], p3 = s[3][j];
      for (int64_t i = 0; i < kChunk; ++i) {
        const float x = vr[i];
        acc[0][i] += p0 * x;
        acc[1][i] += p1 * x;
        acc[2][i] += p2 * x;
        acc[3][i] += p3 * x;
      }
    }
    for (int r = 0; r < kRows; ++r)
      for (int64_t i = 0; i < kChunk; ++i) o[r * hd + d0 + i] = acc[r][i];
  }
  for (; d0 < hd; ++d0)  // head_dim not a multiple of 16: the remaining columns one by one
    for (int64_t j = 0; j < nk; ++j) {
      const float x = v[j * v_stride + d0];
      for (int r = 0; r < kRows; ++r) o[r * hd + d0] += s[r][j] * x;
    }
}

#if defined(__AVX512F__)
// All keys in one block of at most 16 (cross-attention to the text): for kRows queries the scores,
// the softmax and P.V stay in registers, and the rows are written finished (p normalised before
// P.V). q: kRows scaled rows ([kRows, hd], zero past the block), kt: [hd, 16] transposed keys
// (zero past nk), live: the keys attended; rows with none get zeros. hd a multiple of 16.
inline void attention_rows_short(const float* __restrict q, int64_t hd, const float* __restrict kt, int64_t nk,
                                 __mmask16 live, const float* v, int64_t v_stride, float* out, int64_t out_stride,
                                 int64_t rows) {
  Vec16f s[kRows] = {};
  for (int64_t d = 0; d < hd; ++d) {
    Vec16f k;
    std::memcpy(&k, kt + d * 16, sizeof k);
    for (int r = 0; r < kRows; ++r) s[r] += q[r * hd + d] * k;
  }
  alignas(64) float p[kRows][16];
  for (int r = 0; r < kRows; ++r) {
    __m512 x;
    std::memcpy(&x, &s[r], sizeof x);
    if (live == 0) {
      _mm512_store_ps(p[r], _mm512_setzero_ps());
      continue;
    }
    const float m = _mm512_mask_reduce_max_ps(live, x);
    Vec16f shifted;
    std::memcpy(&shifted, &x, sizeof x);
    const Vec16f e = exp_fast_t(shifted - m);
    __m512 ev;
    std::memcpy(&ev, &e, sizeof ev);
    ev = _mm512_maskz_mov_ps(live, ev);
    _mm512_store_ps(p[r], _mm512_mul_ps(ev, _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(ev))));
  }
  for (int64_t d0 = 0; d0 < hd; d0 += 16) {
    __m512 acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nk; ++j) {
      const __m512 vj = _mm512_loadu_ps(v + j * v_stride + d0);
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r][j]), vj, acc[r]);
    }
    // Constant indices only, so the accumulators stay in registers across the keys (indexed by
    // the run-time row count, GCC kept them in memory and stored them on every key).
    for (int r = 0; r < kRows; ++r)
      if (r < rows) _mm512_storeu_ps(out + r * out_stride + d0, acc[r]);
  }
}
#endif

template <int64_t kKeyBlock>
void attention_dense_blocks(const AttentionArgs& a) {
  const int64_t hd = a.head_dim, q_blocks = (a.q_len + kQueryBlock - 1) / kQueryBlock;
  // Keys transposed once per call: kt[h][d][j], j padded with zero keys to whole key blocks.
  const int64_t kv_pad = (a.kv_len + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  AlignedBuffer kt = aligned_floats(size_t(a.heads * hd * kv_pad));
#if defined(__AVX512F__)
  // One block of at most 16 keys and whole vectors of head dims: the register kernel.
  const bool short_keys = kKeyBlock == 16 && a.kv_len <= 16 && hd % 16 == 0;
  __mmask16 live = 0;
  for (int64_t j = 0; j < std::min<int64_t>(a.kv_len, 16); ++j)
    if (!a.key_mask || a.key_mask[j]) live = static_cast<__mmask16>(live | (1u << j));
  if (short_keys && a.kv_len > 0 && (a.kv_len - 1) * a.k_stride <= INT32_MAX) {
    // Each transposed row (one head channel over the 16 key slots) is one masked gather.
    const __mmask16 present = static_cast<__mmask16>((1u << a.kv_len) - 1);
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(a.k_stride)));
    for (int64_t r = 0; r < a.heads * hd; ++r)
      _mm512_store_ps(kt.get() + r * 16,
                      _mm512_mask_i32gather_ps(_mm512_setzero_ps(), present, index, a.k + r, 4));
  } else
#endif
  ThreadPool::global().parallel_for(a.heads * hd, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t h = r / hd, d = r % hd;
      float* dst = kt.get() + r * kv_pad;
      for (int64_t j = 0; j < kv_pad; ++j) dst[j] = j < a.kv_len ? a.k[j * a.k_stride + h * hd + d] : 0.f;
    }
  }, 8);
  ThreadPool::global().parallel_for(a.heads * q_blocks, [&](int64_t t0, int64_t t1) {
    AlignedBuffer qs = aligned_floats(size_t(kQueryBlock * hd));  // scaled queries, zero-padded
    AlignedBuffer acc = aligned_floats(size_t(kQueryBlock * hd));
    float row_max[kQueryBlock], row_sum[kQueryBlock];
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t h = task / q_blocks, i0 = (task % q_blocks) * kQueryBlock;
      const int64_t nq = std::min(kQueryBlock, a.q_len - i0);
      for (int64_t i = 0; i < nq; ++i) {  // branch-free rows, so the copy vectorises
        const float* __restrict src = a.q + (i0 + i) * a.q_stride + h * hd;
        float* __restrict dst = qs.get() + i * hd;
        for (int64_t d = 0; d < hd; ++d) dst[d] = src[d] * a.scale;
      }
      std::fill(qs.get() + nq * hd, qs.get() + kQueryBlock * hd, 0.f);
#if defined(__AVX512F__)
      if (short_keys) {
        const float* v_head = a.v + h * hd;
        for (int64_t i = 0; i < nq; i += kRows)
          attention_rows_short(qs.get() + i * hd, hd, kt.get() + h * hd * kv_pad, a.kv_len, live, v_head, a.v_stride,
                               a.out + (i0 + i) * a.out_stride + h * hd, a.out_stride, std::min(kRows, nq - i));
        continue;
      }
#endif
      std::fill(acc.get(), acc.get() + kQueryBlock * hd, 0.f);
      std::fill(row_max, row_max + kQueryBlock, -INFINITY);
      std::fill(row_sum, row_sum + kQueryBlock, 0.f);
      const float* kt_head = kt.get() + h * hd * kv_pad;
      for (int64_t j0 = 0; j0 < a.kv_len; j0 += kKeyBlock) {
        const int64_t nk = std::min(kKeyBlock, a.kv_len - j0);
        const uint8_t* mask = a.key_mask ? a.key_mask + j0 : nullptr;
        for (int64_t i = 0; i < nq; i += kRows)
          attention_rows<kKeyBlock>(qs.get() + i * hd, hd, kt_head + j0, kv_pad, nk, mask, a.v + j0 * a.v_stride + h * hd, a.v_stride,
                         acc.get() + i * hd, row_max + i, row_sum + i);
      }
      for (int64_t i = 0; i < nq; ++i) {
        float* dst = a.out + (i0 + i) * a.out_stride + h * hd;
        const float inv = row_sum[i] > 0.f ? 1.0f / row_sum[i] : 0.f;
        for (int64_t d = 0; d < hd; ++d) dst[d] = acc[i * hd + d] * inv;
      }
    }
  });
}

void attention_dense_impl(const AttentionArgs& a) {
  if (a.kv_len <= kKeyBlockShort) return attention_dense_blocks<kKeyBlockShort>(a);
  attention_dense_blocks<kKeyBlockLong>(a);
}

}  // namespace
}  // namespace ff
