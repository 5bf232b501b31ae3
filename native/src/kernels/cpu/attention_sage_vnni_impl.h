#pragma once
// The VNNI Sage kernel's query tiles (include only from files built with AVX-512 VNNI; each has
// its own copy): per 16 query rows and chunk of up to 256 keys, S = Q.K^T with vpdpbusd on q + 128
// (u8) against the signed packed keys, corrected by 128 * (sum of the key's int8 values), and the
// online softmax in fp32; P.V is the caller's (fp32 FMAs in attention_sage_vnni.cpp, fp16 FMAs
// in attention_sage_fp16.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention_sage.h"
#include "sage_softmax_avx512.h"
#include "vnni_dot4x4.h"

namespace ff::cpu {
namespace {

constexpr int64_t kChunkKeys = 256;
constexpr int64_t kChunkBlocks = kChunkKeys / kSageBlock;

// s[r, 0..64) = dot(qu[r], key) * factor for 16 query rows and one 64-key block (four packed
// 16-key tiles of kSteps 16x64 panels each, tile g at keyBlock + g * tileBytes), keys past
// liveKeys -inf. Four rows x four tiles per pass (dotBlock4x4).
void scoreBlock(const uint8_t* qu, int64_t hdPad, const int8_t* keyBlock, int64_t tileBytes, const int32_t* keySum,
                float factor, int64_t liveKeys, float* s, int64_t lds) {
  const __m512 vf = _mm512_set1_ps(factor), ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < 16; r += 4) {
    __m512i acc[4][4];
    dotBlock4x4(qu + r * hdPad, hdPad, keyBlock, tileBytes, hdPad / 4, acc);
    for (int g = 0; g < 4; ++g) {
      const __m512i offset = _mm512_slli_epi32(_mm512_loadu_si512(keySum + g * 16), 7);
      const int64_t live = std::clamp<int64_t>(liveKeys - g * 16, 0, 16);
      const __mmask16 liveMask = static_cast<__mmask16>((1u << live) - 1);
      for (int i = 0; i < 4; ++i) {
        const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][g], offset)), vf);
        _mm512_storeu_ps(s + (r + i) * lds + g * 16, _mm512_mask_blend_ps(liveMask, ninf, v));
      }
    }
  }
}

// Attention of query block qb over the listed key blocks: pv(s, cols, m, l, blocks, nb, o) runs a
// chunk's online softmax and P.V for the 16 rows (s: base-2 logits [16, kChunkKeys], cols of them
// live per row; m, l: [16] running maxima and denominators; blocks the chunk's nb key blocks; o:
// [16, hdV] running numerators).
template <class PV>
void sageQueryTiles(const SageHead& h, int64_t qb, const int32_t* keyBlocks, int64_t count, float* out, int64_t ldo,
                    PV&& pv) {
  const int64_t rows = std::min(kSageBlock, h.qTokens - qb * kSageBlock);
  const int64_t kSteps = h.hdPad / 64;
  alignas(64) float s[16 * kChunkKeys];
  alignas(64) uint8_t qu[16 * kSageMaxHeadDim];
  alignas(64) float o[16 * kSageMaxHeadDim];  // [16, hdV] running numerators
  float m[16], l[16];
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int8_t* qRows = h.q.data() + (qb * kSageBlock + r0) * h.hdPad;
    for (int64_t i = 0; i < 16 * h.hdPad; ++i) qu[i] = static_cast<uint8_t>(qRows[i] ^ 0x80);
    std::fill(m, m + 16, -INFINITY);
    std::fill(l, l + 16, 0.0f);
    std::fill(o, o + 16 * h.hdV, 0.0f);
    for (int64_t c0 = 0; c0 < count; c0 += kChunkBlocks) {
      const int64_t nb = std::min(kChunkBlocks, count - c0);
      const int64_t cols = nb * kSageBlock;
      for (int64_t bi = 0; bi < nb; ++bi) {
        const int64_t kb = keyBlocks[c0 + bi];
        const float f = h.qScale[static_cast<size_t>(qb)] * h.kScale[static_cast<size_t>(kb)] * h.logitScale;
        scoreBlock(qu, h.hdPad, h.k.data() + kb * 4 * kSteps * 1024, kSteps * 1024, h.kSum.data() + kb * kSageBlock, f,
                   h.kTokens - kb * kSageBlock, s + bi * kSageBlock, kChunkKeys);
      }
      pv(s, cols, m, l, keyBlocks + c0, nb, o);
    }
    sageWriteRows(o, l, std::min<int64_t>(16, rows - r0), h.hdV, h.headDim, out + r0 * ldo, ldo);
  }
}

}  // namespace
}  // namespace ff::cpu
