// The dense online-softmax kernel, compiled once per instruction set (attention_dense.cpp,
// attention_dense_avx512.cpp). Loops are written so the compiler vectorises them without
// reassociating any reduction: scores over a block of keys are accumulated along the key axis
// from a transposed K block, and P·V along head_dim.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/vmath.h"

namespace ff {
namespace {  // internal linkage: one copy per instruction set

constexpr int64_t kQueryBlock = 32, kKeyBlock = 64;

void attention_dense_impl(const AttentionArgs& a) {
  const int64_t hd = a.head_dim, q_blocks = (a.q_len + kQueryBlock - 1) / kQueryBlock;
  ThreadPool::global().parallel_for(a.heads * q_blocks, [&](int64_t t0, int64_t t1) {
    AlignedBuffer kt = aligned_floats(size_t(hd * kKeyBlock));  // K block transposed [hd, kKeyBlock]
    AlignedBuffer acc = aligned_floats(size_t(kQueryBlock * hd));
    alignas(64) float s[kKeyBlock];
    float row_max[kQueryBlock], row_sum[kQueryBlock];
    for (int64_t task = t0; task < t1; ++task) {
      int64_t h = task / q_blocks, i0 = (task % q_blocks) * kQueryBlock;
      int64_t nq = std::min(kQueryBlock, a.q_len - i0);
      std::fill(acc.get(), acc.get() + kQueryBlock * hd, 0.f);
      std::fill(row_max, row_max + kQueryBlock, -INFINITY);
      std::fill(row_sum, row_sum + kQueryBlock, 0.f);
      for (int64_t j0 = 0; j0 < a.kv_len; j0 += kKeyBlock) {
        int64_t nk = std::min(kKeyBlock, a.kv_len - j0);
        for (int64_t j = 0; j < nk; ++j) {
          const float* kr = a.k + (j0 + j) * a.k_stride + h * hd;
          for (int64_t d = 0; d < hd; ++d) kt[d * kKeyBlock + j] = kr[d];
        }
        for (int64_t i = 0; i < nq; ++i) {
          const float* qr = a.q + (i0 + i) * a.q_stride + h * hd;
          for (int64_t j = 0; j < kKeyBlock; ++j) s[j] = 0.f;
          for (int64_t d = 0; d < hd; ++d) {
            float qd = qr[d] * a.scale;
            const float* ktd = kt.get() + d * kKeyBlock;
            for (int64_t j = 0; j < kKeyBlock; ++j) s[j] += qd * ktd[j];
          }
          float block_max = -INFINITY;
          for (int64_t j = 0; j < nk; ++j) {
            bool live = !a.key_mask || a.key_mask[j0 + j];
            if (!live) s[j] = -INFINITY;
            block_max = std::max(block_max, s[j]);
          }
          if (block_max == -INFINITY) continue;  // every key of the block masked
          float new_max = std::max(row_max[i], block_max);
          float correction = row_max[i] == -INFINITY ? 0.f : exp_fast(row_max[i] - new_max);
          float sum = 0.f;
          for (int64_t j = 0; j < nk; ++j) {
            float p = s[j] == -INFINITY ? 0.f : exp_fast(s[j] - new_max);
            s[j] = p;
            sum += p;
          }
          row_sum[i] = row_sum[i] * correction + sum;
          row_max[i] = new_max;
          float* o = acc.get() + i * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] *= correction;
          for (int64_t j = 0; j < nk; ++j) {
            float p = s[j];
            if (p == 0.f) continue;
            const float* vr = a.v + (j0 + j) * a.v_stride + h * hd;
            for (int64_t d = 0; d < hd; ++d) o[d] += p * vr[d];
          }
        }
      }
      for (int64_t i = 0; i < nq; ++i) {
        float* dst = a.out + (i0 + i) * a.out_stride + h * hd;
        float inv = row_sum[i] > 0.f ? 1.0f / row_sum[i] : 0.f;
        for (int64_t d = 0; d < hd; ++d) dst[d] = acc[i * hd + d] * inv;
      }
    }
  });
}

}  // namespace
}  // namespace ff
