// Sage attention on AMX. Per 16 query rows and a chunk of up to 256 keys: S = Q.K^T with
// tdpbssd (int8 -> int32, one 16x16 tile per 16 keys), dequantized and softmaxed online in fp32
// with AVX-512, P rounded to bf16, P.V with tdpbf16ps into 16x16 fp32 tiles, added to the
// row accumulators after their rescale. Tiles: 0-3 P.V accumulators, 4 A (Q or P), 5-6 B (K or
// V), 7 S.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "amx_tiles.h"
#include "attention_sage.h"
#include "sage_softmax_avx512.h"

namespace ff::cpu {

namespace {

constexpr int64_t kChunkKeys = 256;
constexpr int64_t kChunkBlocks = kChunkKeys / kSageBlock;

// P.V for one group of up to 4 output column tiles: acc[t] <- P[16, keys] . V[keys, 16 cols].
void pvTiles(const SageHead& h, const uint16_t* p, const int32_t* keyBlocks, int64_t keyGroups,
             int64_t firstColTile, int64_t tiles, float (*acc)[256]) {
  const int64_t colTiles = h.hdV / 16;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t g = 0; g < keyGroups; ++g) {
    _tile_loadd(4, p + g * 32, kChunkKeys * 2);
    const int64_t keyGroup = keyBlocks[g / 2] * 2 + g % 2;  // 32-key group index in V
    const uint16_t* vt = h.vBf16.data() + (keyGroup * colTiles + firstColTile) * 512;
    _tile_loadd(5, vt, 64);
    _tile_dpbf16ps(0, 4, 5);
    if (tiles > 1) {
      _tile_loadd(6, vt + 512, 64);
      _tile_dpbf16ps(1, 4, 6);
    }
    if (tiles > 2) {
      _tile_loadd(5, vt + 1024, 64);
      _tile_dpbf16ps(2, 4, 5);
    }
    if (tiles > 3) {
      _tile_loadd(6, vt + 1536, 64);
      _tile_dpbf16ps(3, 4, 6);
    }
  }
  _tile_stored(0, acc[0], 64);
  if (tiles > 1) _tile_stored(1, acc[1], 64);
  if (tiles > 2) _tile_stored(2, acc[2], 64);
  if (tiles > 3) _tile_stored(3, acc[3], 64);
}

}  // namespace

void packVBf16Amx(const float* v, int64_t ldv, int64_t nk, int64_t hd, int64_t hdV, uint16_t* dst) {
  const int64_t colTiles = hdV / 16;
  // Lane i of the result takes word idx[i] of (a: words 0-15 = key j, b: 16-31 = key j + 1).
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t j = 0; j < nk; j += 2) {
    const float* r0 = v + j * ldv;
    const float* r1 = j + 1 < nk ? r0 + ldv : nullptr;
    uint16_t* d = dst + (j / 32) * colTiles * 512 + ((j % 32) / 2) * 32;
    for (int64_t c0 = 0; c0 < hd; c0 += 16, d += 512) {
      const int64_t live = std::min<int64_t>(16, hd - c0);
      const __mmask16 m = static_cast<__mmask16>((1u << live) - 1);
      const __m256i a = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r0 + c0));
      const __m256i b = r1 ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r1 + c0)) : _mm256_setzero_si256();
      const __m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
      _mm512_storeu_si512(d, _mm512_permutexvar_epi16(idx, ab));
    }
  }
}

void sageQueryBlockAmx(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count,
                       float* out, int64_t ldo) {
  configureAmxTiles16x64();
  const int64_t rows = std::min(kSageBlock, h.qTokens - qb * kSageBlock);
  const int64_t kSteps = h.hdPad / 64, colTiles = h.hdV / 16;
  alignas(64) float s[16 * kChunkKeys];       // logits, then fp32 probabilities
  alignas(64) uint16_t p[16 * kChunkKeys];    // bf16 probabilities, the A operand of P.V
  alignas(64) float acc[4][256];
  alignas(64) float o[16 * kSageMaxHeadDim];  // [16, hdV] running output
  float m[16], l[16];
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int8_t* qRows = h.q.data() + (qb * kSageBlock + r0) * h.hdPad;
    std::fill(m, m + 16, -INFINITY);
    std::fill(l, l + 16, 0.0f);
    std::fill(o, o + 16 * h.hdV, 0.0f);
    for (int64_t c0 = 0; c0 < count; c0 += kChunkBlocks) {
      const int64_t nb = std::min(kChunkBlocks, count - c0);
      const int64_t cols = nb * kSageBlock;
      // S[16, cols] = Q[16, hd] . K~[cols, hd]^T, one 16-key tile at a time.
      for (int64_t bi = 0; bi < nb; ++bi) {
        const int64_t kb = keyBlocks[c0 + bi];
        const float f = h.qScale[static_cast<size_t>(qb)] * h.kScale[static_cast<size_t>(kb)] * h.logitScale;
        const int64_t validKeys = h.kTokens - kb * kSageBlock;
        for (int64_t g = 0; g < 4; ++g) {
          _tile_zero(7);
          for (int64_t ks = 0; ks < kSteps; ++ks) {
            _tile_loadd(4, qRows + ks * 64, h.hdPad);
            _tile_loadd(5, h.k.data() + ((kb * 4 + g) * kSteps + ks) * 1024, 64);
            _tile_dpbssd(7, 4, 5);
          }
          float* sTile = s + bi * kSageBlock + g * 16;
          _tile_stored(7, sTile, kChunkKeys * 4);
          const int64_t live = std::clamp<int64_t>(validKeys - g * 16, 0, 16);
          const __mmask16 liveMask = static_cast<__mmask16>((1u << live) - 1);
          for (int64_t r = 0; r < 16; ++r) {
            float* row = sTile + r * kChunkKeys;
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(row)), _mm512_set1_ps(f));
            _mm512_storeu_ps(row, _mm512_mask_blend_ps(liveMask, _mm512_set1_ps(-INFINITY), v));
          }
        }
      }
      for (int64_t r = 0; r < 16; ++r) {
        float* row = s + r * kChunkKeys;
        const float corr = onlineSoftmaxRow(row, cols, m[r], l[r], row);
        uint16_t* pRow = p + r * kChunkKeys;
        for (int64_t c = 0; c < cols; c += 16) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(pRow + c),
                              (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(row + c)));
        }
        const __m512 vc = _mm512_set1_ps(corr);
        for (int64_t c = 0; c < h.hdV; c += 16) {
          _mm512_storeu_ps(o + r * h.hdV + c, _mm512_mul_ps(_mm512_loadu_ps(o + r * h.hdV + c), vc));
        }
      }
      for (int64_t t0 = 0; t0 < colTiles; t0 += 4) {
        const int64_t tiles = std::min<int64_t>(4, colTiles - t0);
        pvTiles(h, p, keyBlocks + c0, cols / 32, t0, tiles, acc);
        for (int64_t t = 0; t < tiles; ++t) {
          for (int64_t r = 0; r < 16; ++r) {
            float* dst = o + r * h.hdV + (t0 + t) * 16;
            _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_loadu_ps(acc[t] + r * 16)));
          }
        }
      }
    }
    sageWriteRows(o, l, std::min<int64_t>(16, rows - r0), h.hdV, h.headDim, out + r0 * ldo, ldo);
  }
}

}  // namespace ff::cpu
