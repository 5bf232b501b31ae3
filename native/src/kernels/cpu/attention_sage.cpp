#include "attention_sage.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace ff::cpu {

void sageWriteRows(const float* o, const float* l, int64_t live, int64_t hdV, int64_t headDim,
                   float* out, int64_t ldo) {
  for (int64_t r = 0; r < live; ++r) {
    const float inv = 1.0f / l[r];
    for (int64_t c = 0; c < headDim; ++c) out[r * ldo + c] = o[r * hdV + c] * inv;
  }
}

namespace {

// The widest build the CPU has (bit-identical: same products, same rounding).
float quantizeBlock(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q, int64_t ldq) {
  static const bool wide = variant_score(Variant::Avx512) > 0, avx2 = variant_score(Variant::Avx2) > 0;
  if (wide) return quantizeBlockAvx512(x, ldx, rows, cols, shift, q, ldq);
  if (avx2) return quantizeBlockAvx2(x, ldx, rows, cols, shift, q, ldq);
  return quantizeBlockScalar(x, ldx, rows, cols, shift, q, ldq);
}

}  // namespace

// quant.h. Rounds to nearest even through the 1.5 * 2^23 addition (exact for |v| <= 127),
// which unlike nearbyint vectorises everywhere.
float quantizeBlockScalar(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                          int64_t ldq) {
  std::vector<float> shifted(static_cast<size_t>(rows * cols));
  float lanes[8] = {};  // independent running maxima: a single one serialises the loop
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = shifted.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      dst[c] = x[r * ldx + c] - (shift ? shift[c] : 0.0f);
      const float m = std::fabs(dst[c]);
      lanes[c % 8] = m > lanes[c % 8] ? m : lanes[c % 8];
    }
  }
  const float absMax = *std::max_element(lanes, lanes + 8);
  const float inv = int8InverseScaleForAbsMax(absMax);
  constexpr float kRoundMagic = 12582912.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = shifted.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c)
      q[r * ldq + c] = static_cast<int8_t>(static_cast<int32_t>((src[c] * inv + kRoundMagic) - kRoundMagic));
  }
  return int8ScaleForAbsMax(absMax);
}

void addColumnsDoubleAvx512(const float* x, int64_t ld, int64_t rows, int64_t cols, double* sum);  // attention_sla_avx512.cpp

std::vector<float> keyChannelMean(const AttentionArgs& a, int64_t head) {
  const int64_t hd = a.head_dim;
  const float* k = a.k + head * hd;
  std::vector<double> sum(static_cast<size_t>(hd), 0.0);
  static const bool wide = variant_score(Variant::Avx512) > 0;
  if (wide) {
    addColumnsDoubleAvx512(k, a.k_stride, a.kv_len, hd, sum.data());  // the same sums, in registers
  } else {
    for (int64_t i = 0; i < a.kv_len; ++i) {
      const float* row = k + i * a.k_stride;
      for (int64_t c = 0; c < hd; ++c) sum[static_cast<size_t>(c)] += row[c];
    }
  }
  std::vector<float> mean(static_cast<size_t>(hd));
  for (int64_t c = 0; c < hd; ++c)
    mean[static_cast<size_t>(c)] = static_cast<float>(sum[static_cast<size_t>(c)] / static_cast<double>(a.kv_len));
  return mean;
}

void prepareSageHeadMeta(const AttentionArgs& a, int64_t head, Variant variant, SageHead& h) {
  if (a.head_dim > kSageMaxHeadDim) {
    fail(ErrorCode::BadRequest, "sage attention supports head_dim up to " +
                                    std::to_string(kSageMaxHeadDim) + ", got " +
                                    std::to_string(a.head_dim));
  }
  if (a.key_mask != nullptr) fail(ErrorCode::Internal, "sage attention takes no key mask");
  requireInt8Variant(variant, "sage attention");
  h.variant = variant;
  h.qTokens = a.q_len;
  h.kTokens = a.kv_len;
  h.headDim = a.head_dim;
  h.qBlocks = (a.q_len + kSageBlock - 1) / kSageBlock;
  h.kBlocks = (a.kv_len + kSageBlock - 1) / kSageBlock;
  h.hdPad = roundUp(a.head_dim, 64);
  h.hdV = roundUp(a.head_dim, 16);
  h.logitScale = static_cast<float>(1.4426950408889634 * a.scale);
  h.kMean = keyChannelMean(a, head);
  h.pvF16 = variant == Variant::Vnni && h.hdV % 64 == 0 && sagePvFp16Enabled();
}

namespace {
std::atomic<int>& sagePvFp16Flag() {
  static std::atomic<int> on{fp16SwitchFromEnv("FRAMEFLEET_CPU_SAGE_PV")};
  return on;
}
}  // namespace

bool sagePvFp16Enabled() { return sagePvFp16Flag().load(std::memory_order_relaxed) != 0 && sageFp16Runs(); }
bool setSagePvFp16(bool on) { return sagePvFp16Flag().exchange(on ? 1 : 0) != 0; }

void prepareSageHeadPart(const AttentionArgs& a, int64_t head, SagePart part, SageHead& h) {
  const int64_t hd = a.head_dim, nk = a.kv_len, kPad = h.kBlocks * kSageBlock;
  const Variant variant = h.variant;
  if (part == SagePart::Q) {
    const float* q = a.q + head * hd;
    h.q.assign(static_cast<size_t>(h.qBlocks * kSageBlock * h.hdPad), 0);
    h.qScale.assign(static_cast<size_t>(h.qBlocks), 0.0f);
    for (int64_t b = 0; b < h.qBlocks; ++b) {
      const int64_t r0 = b * kSageBlock, rows = std::min(kSageBlock, a.q_len - r0);
      h.qScale[static_cast<size_t>(b)] = quantizeBlock(q + r0 * a.q_stride, a.q_stride, rows, hd, nullptr,
                                                       h.q.data() + r0 * h.hdPad, h.hdPad);
    }
    return;
  }
  if (part == SagePart::K) {
    const float* k = a.k + head * hd;
    std::vector<int8_t> kRows(static_cast<size_t>(kPad * h.hdPad), 0);
    h.kScale.assign(static_cast<size_t>(h.kBlocks), 0.0f);
    for (int64_t b = 0; b < h.kBlocks; ++b) {
      const int64_t r0 = b * kSageBlock, rows = std::min(kSageBlock, nk - r0);
      h.kScale[static_cast<size_t>(b)] = quantizeBlock(k + r0 * a.k_stride, a.k_stride, rows, hd, h.kMean.data(),
                                                       kRows.data() + r0 * h.hdPad, h.hdPad);
    }
    h.kSum.assign(static_cast<size_t>(kPad), 0);
    for (int64_t j = 0; j < kPad; ++j) {
      const int8_t* row = kRows.data() + j * h.hdPad;
      h.kSum[static_cast<size_t>(j)] = std::accumulate(row, row + h.hdPad, 0);
    }
    if (variant == Variant::Scalar) {
      h.k = std::move(kRows);
    } else {
      h.k.assign(kRows.size(), 0);
      packInt8Panels(kRows.data(), kPad, h.hdPad, h.hdPad, h.k.data());
    }
    return;
  }
  const float* v = a.v + head * hd;
  if (variant == Variant::Amx) {
    h.vBf16.assign(static_cast<size_t>(kPad * h.hdV), 0);
    packVBf16Amx(v, a.v_stride, nk, hd, h.hdV, h.vBf16.data());
    h.v.clear();
    return;
  }
  if (h.pvF16) {
    h.vF16.resize(static_cast<size_t>(kPad * h.hdV));
    const float maxAbs = packVFp16(v, a.v_stride, nk, hd, h.hdV, kPad, h.vF16.data());
    if (maxAbs <= kSageFp16MaxV) {  // (a NaN in v gives NaN outputs on either path)
      h.v.clear();
      h.vBf16.clear();
      return;
    }
    h.pvF16 = false;  // out of fp16's safe range: this head's P.V in fp32 (h is this head's alone)
    h.vF16.clear();
  }
  // Every element written once (no zero fill under the copied rows): rows [0, nk) from v with
  // zero columns past hd, zero rows up to kPad.
  h.v.resize(static_cast<size_t>(kPad * h.hdV));
  for (int64_t j = 0; j < nk; ++j) {
    float* dst = h.v.data() + j * h.hdV;
    std::copy(v + j * a.v_stride, v + j * a.v_stride + hd, dst);
    std::fill(dst + hd, dst + h.hdV, 0.0f);
  }
  std::fill(h.v.begin() + nk * h.hdV, h.v.end(), 0.0f);
  h.vBf16.clear();
}

void packVBf16Scalar(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, uint16_t* dst) {
  const int64_t colTiles = hdV / 16;
  for (int64_t j = 0; j < nk; ++j) {
    uint16_t* d = dst + (j / 32) * colTiles * 512 + ((j % 32) / 2) * 32 + (j % 2);
    const float* src = v + j * ldv;
    for (int64_t c0 = 0; c0 < hd; c0 += 16, d += 512) {
      for (int64_t c = 0; c < std::min<int64_t>(16, hd - c0); ++c) d[c * 2] = toBf16(src[c0 + c]);
    }
  }
}

void prepareSageHead(const AttentionArgs& a, int64_t head, Variant variant, SageHead& h) {
  prepareSageHeadMeta(a, head, variant, h);
  for (SagePart part : {SagePart::Q, SagePart::K, SagePart::V}) prepareSageHeadPart(a, head, part, h);
}

void sageQueryBlockScalar(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                          float* out, int64_t ldo) {
  const int64_t rows = std::min(kSageBlock, h.qTokens - qb * kSageBlock);
  std::vector<float> s(static_cast<size_t>(count * kSageBlock));
  std::vector<double> acc(static_cast<size_t>(h.headDim));
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* qi = h.q.data() + (qb * kSageBlock + r) * h.hdPad;
    float rowMax = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < count; ++c) {
      const int64_t kb = keyBlocks[c];
      const float f = h.qScale[static_cast<size_t>(qb)] * h.kScale[static_cast<size_t>(kb)] * h.logitScale;
      for (int64_t j = 0; j < kSageBlock; ++j) {
        const int64_t key = kb * kSageBlock + j;
        float& sj = s[static_cast<size_t>(c * kSageBlock + j)];
        if (key >= h.kTokens) {
          sj = -std::numeric_limits<float>::infinity();
          continue;
        }
        const int8_t* kj = h.k.data() + key * h.hdPad;
        int32_t dot = 0;
        for (int64_t d = 0; d < h.hdPad; ++d) dot += int32_t{qi[d]} * kj[d];
        sj = static_cast<float>(dot) * f;
        rowMax = std::max(rowMax, sj);
      }
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    double denom = 0.0;
    for (int64_t c = 0; c < count; ++c) {
      for (int64_t j = 0; j < kSageBlock; ++j) {
        const int64_t key = keyBlocks[c] * kSageBlock + j;
        if (key >= h.kTokens) continue;
        const double p = std::exp2(static_cast<double>(s[static_cast<size_t>(c * kSageBlock + j)] - rowMax));
        denom += p;
        const float* vj = h.v.data() + key * h.hdV;
        for (int64_t d = 0; d < h.headDim; ++d) acc[static_cast<size_t>(d)] += p * vj[d];
      }
    }
    for (int64_t d = 0; d < h.headDim; ++d)
      out[r * ldo + d] = static_cast<float>(acc[static_cast<size_t>(d)] / denom);
  }
}

void sageQueryBlock(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                    float* out, int64_t ldo) {
  switch (h.variant) {
    case Variant::Amx:
      sageQueryBlockAmx(h, qb, keyBlocks, count, out, ldo);
      break;
    case Variant::Vnni:
      if (h.pvF16) sageQueryBlockVnniFp16(h, qb, keyBlocks, count, out, ldo);
      else sageQueryBlockVnni(h, qb, keyBlocks, count, out, ldo);
      break;
    case Variant::Avx2:
      sageQueryBlockAvx2(h, qb, keyBlocks, count, out, ldo);
      break;
    default:
      sageQueryBlockScalar(h, qb, keyBlocks, count, out, ldo);
      break;
  }
}

namespace {

// The sage build that runs `variant`: Avx512 without VNNI has none of its own and runs Avx2.
Variant sageBuild(Variant variant) { return variant == Variant::Avx512 ? Variant::Avx2 : variant; }

void runSage(const AttentionArgs& a, Variant variant) {
  variant = sageBuild(variant);
  std::vector<SageHead> heads(static_cast<size_t>(a.heads));
  parallelChunks(a.heads, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) prepareSageHead(a, h, variant, heads[static_cast<size_t>(h)]);
  });
  const int64_t qBlocks = heads.empty() ? 0 : heads[0].qBlocks;
  const int64_t kBlocks = heads.empty() ? 0 : heads[0].kBlocks;
  std::vector<int32_t> all(static_cast<size_t>(kBlocks));
  std::iota(all.begin(), all.end(), 0);
  parallelChunks(a.heads * qBlocks, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t h = t / qBlocks, qb = t % qBlocks;
      sageQueryBlock(heads[static_cast<size_t>(h)], qb, all.data(), kBlocks,
                     a.out + qb * kSageBlock * a.out_stride + h * a.head_dim, a.out_stride);
    }
  });
}

}  // namespace

void sageAttention(const AttentionArgs& a, Variant variant) { runSage(a, variant); }

void sageAttentionReference(const AttentionArgs& a) { runSage(a, Variant::Scalar); }

}  // namespace ff::cpu
