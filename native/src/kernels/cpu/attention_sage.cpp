#include "attention_sage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace ff::cpu {

uint16_t toBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

namespace {

// x: [rows, cols] (stride ldx), minus shift[cols] when given -> q: [rows, ldq] with one scale
// for the whole block (absmax / 127); returns the scale.
float quantizeBlock(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift,
                    int8_t* q, int64_t ldq) {
  float absMax = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      absMax = std::max(absMax, std::fabs(x[r * ldx + c] - (shift ? shift[c] : 0.0f)));
  const float inv = int8InverseScaleForAbsMax(absMax);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      q[r * ldq + c] =
          static_cast<int8_t>(std::nearbyint((x[r * ldx + c] - (shift ? shift[c] : 0.0f)) * inv));
  return int8ScaleForAbsMax(absMax);
}

}  // namespace

void prepareSageHead(const AttentionArgs& a, int64_t head, Variant variant, SageHead& h) {
  if (a.headDim > kSageMaxHeadDim) {
    fail(ErrorCode::BadRequest, "sage attention supports head_dim up to " +
                                    std::to_string(kSageMaxHeadDim) + ", got " +
                                    std::to_string(a.headDim));
  }
  requireInt8Variant(variant, "sage attention");
  h.variant = variant;
  h.tokens = a.tokens;
  h.headDim = a.headDim;
  h.blocks = (a.tokens + kSageBlock - 1) / kSageBlock;
  h.hdPad = roundUp(a.headDim, 64);
  h.hdV = roundUp(a.headDim, 16);
  h.logitScale = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(a.headDim)));
  const int64_t n = a.tokens, hd = a.headDim, nPad = h.blocks * kSageBlock;
  const float* q = a.q + head * hd;
  const float* k = a.k + head * hd;
  const float* v = a.v + head * hd;

  // k: [n, hd] -> kMean: [hd]
  std::vector<double> sum(static_cast<size_t>(hd), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < hd; ++c) sum[static_cast<size_t>(c)] += k[i * a.ldk + c];
  h.kMean.resize(static_cast<size_t>(hd));
  for (int64_t c = 0; c < hd; ++c)
    h.kMean[static_cast<size_t>(c)] = static_cast<float>(sum[static_cast<size_t>(c)] / static_cast<double>(n));

  h.q.assign(static_cast<size_t>(nPad * h.hdPad), 0);
  h.qScale.assign(static_cast<size_t>(h.blocks), 0.0f);
  std::vector<int8_t> kRows(static_cast<size_t>(nPad * h.hdPad), 0);
  h.kScale.assign(static_cast<size_t>(h.blocks), 0.0f);
  for (int64_t b = 0; b < h.blocks; ++b) {
    const int64_t r0 = b * kSageBlock, rows = std::min(kSageBlock, n - r0);
    h.qScale[static_cast<size_t>(b)] =
        quantizeBlock(q + r0 * a.ldq, a.ldq, rows, hd, nullptr, h.q.data() + r0 * h.hdPad, h.hdPad);
    h.kScale[static_cast<size_t>(b)] = quantizeBlock(k + r0 * a.ldk, a.ldk, rows, hd, h.kMean.data(),
                                                     kRows.data() + r0 * h.hdPad, h.hdPad);
  }
  h.kSum.assign(static_cast<size_t>(nPad), 0);
  for (int64_t j = 0; j < nPad; ++j) {
    const int8_t* row = kRows.data() + j * h.hdPad;
    h.kSum[static_cast<size_t>(j)] = std::accumulate(row, row + h.hdPad, 0);
  }
  if (variant == Variant::Scalar) {
    h.k = std::move(kRows);
  } else {
    h.k.assign(kRows.size(), 0);
    packInt8Panels(kRows.data(), nPad, h.hdPad, h.hdPad, h.k.data());
  }

  if (variant == Variant::Amx) {
    // v: [n, hd] -> bf16 B tiles: key pairs interleaved, 16 output columns per tile.
    const int64_t colTiles = h.hdV / 16;
    h.vBf16.assign(static_cast<size_t>(nPad * h.hdV), 0);
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t c = 0; c < hd; ++c) {
        const int64_t tile = (j / 32) * colTiles + c / 16;
        const int64_t idx = tile * 512 + ((j % 32) / 2) * 32 + (c % 16) * 2 + (j % 2);
        h.vBf16[static_cast<size_t>(idx)] = toBf16(v[j * a.ldv + c]);
      }
    }
    h.v.clear();
  } else {
    h.v.assign(static_cast<size_t>(nPad * h.hdV), 0.0f);
    for (int64_t j = 0; j < n; ++j)
      std::copy(v + j * a.ldv, v + j * a.ldv + hd, h.v.begin() + j * h.hdV);
    h.vBf16.clear();
  }
}

void sageQueryBlockScalar(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                          float* out, int64_t ldo) {
  const int64_t rows = std::min(kSageBlock, h.tokens - qb * kSageBlock);
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
        if (key >= h.tokens) {
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
        if (key >= h.tokens) continue;
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
      sageQueryBlockVnni(h, qb, keyBlocks, count, out, ldo);
      break;
    default:
      sageQueryBlockScalar(h, qb, keyBlocks, count, out, ldo);
      break;
  }
}

namespace {

// Sage attention of every head on `variant`; Avx2 and Avx512 have no sage build and run scalar.
void runSage(const AttentionArgs& a, Variant variant) {
  if (variant != Variant::Amx && variant != Variant::Vnni) variant = Variant::Scalar;
  std::vector<SageHead> heads(static_cast<size_t>(a.heads));
  parallelChunks(a.heads, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) prepareSageHead(a, h, variant, heads[static_cast<size_t>(h)]);
  });
  const int64_t blocks = (a.tokens + kSageBlock - 1) / kSageBlock;
  std::vector<int32_t> all(static_cast<size_t>(blocks));
  std::iota(all.begin(), all.end(), 0);
  parallelChunks(a.heads * blocks, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t h = t / blocks, qb = t % blocks;
      sageQueryBlock(heads[static_cast<size_t>(h)], qb, all.data(), blocks,
                     a.o + qb * kSageBlock * a.ldo + h * a.headDim, a.ldo);
    }
  });
}

}  // namespace

void sageAttention(const AttentionArgs& a, Variant variant) { runSage(a, variant); }

void sageAttentionReference(const AttentionArgs& a) { runSage(a, Variant::Scalar); }

}  // namespace ff::cpu
