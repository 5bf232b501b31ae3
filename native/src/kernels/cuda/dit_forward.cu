#include "kernels/cuda/dit_forward.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/ops.h"

namespace ff::cuda {

namespace {

struct Scratch {
  void *h, *q, *k, *v, *o, *y, *f, *k2, *v2, *attn;
  size_t attnBytes, bytes;

  Scratch(const DitShape& s, void* base) {
    const size_t nd = static_cast<size_t>(s.tokens) * s.dim * 2, ld = static_cast<size_t>(s.ctxTokens) * s.dim * 2;
    size_t off = 0;
    auto take = [&](size_t n) {
      void* p = static_cast<uint8_t*>(base) + off;
      off += (n + 255) / 256 * 256;
      return p;
    };
    h = take(nd);
    q = take(nd);
    k = take(nd);
    v = take(nd);
    o = take(nd);
    y = take(std::max(nd, static_cast<size_t>(s.tokens) * s.patchOut * 2));
    f = take(static_cast<size_t>(s.tokens) * s.ffn * 2);
    k2 = take(ld);
    v2 = take(ld);
    attnBytes = attentionWorkspaceBytes({s.heads, s.tokens, s.tokens, s.dim / s.heads, 0.0f});
    attn = take(attnBytes);
    bytes = off;
  }
};

const float* f32(const void* p) { return static_cast<const float*>(p); }

}  // namespace

size_t ditScratchBytes(const DitShape& s) { return Scratch(s, nullptr).bytes; }

void ditForward(const DitShape& s, const DitArgs& a, void* scratch, size_t scratchBytes, cublasContext* cublas,
                CUstream_st* stream) {
  const Scratch w(s, scratch);
  if (scratchBytes < w.bytes) throw std::invalid_argument("ditForward: scratch of " + std::to_string(scratchBytes) + " bytes, need " + std::to_string(w.bytes));
  if (s.frames * s.rows * s.cols != s.tokens) throw std::invalid_argument("ditForward: the grid does not match the token count");
  const int N = s.tokens, D = s.dim, H = s.heads, hd = D / H, L = s.ctxTokens;
  // Token-major [N, D] holds head h of token n at n * D + h * hd.
  auto tm = [&](void* p) { return AttnTensor{p, hd, D}; };
  const AttnShape self{H, N, N, hd, 0.0f}, cross{H, N, L, hd, 0.0f};

  // q = norm_q(x Wq^T + bq), k = norm_k(src Wk^T + bk), v = src Wv^T + bv, with p pointing at one
  // attention's (q.w, q.b, k.w, k.b, v.w, v.b).
  auto qkv = [&](const void* x, const void* src, int nSrc, const void* const* p, const void* normQ, const void* normK,
                 void* q, void* k, void* v) {
    gemmBf16(cublas, stream, N, D, D, x, p[0], q);
    gemmBf16(cublas, stream, nSrc, D, D, src, p[2], k);
    gemmBf16(cublas, stream, nSrc, D, D, src, p[4], v);
    rmsNorm(q, N, D, D, f32(p[1]), f32(normQ), s.eps, stream);
    rmsNorm(k, nSrc, D, D, f32(p[3]), f32(normK), s.eps, stream);
    addBias(v, nSrc, D, f32(p[5]), stream);
  };

  for (int layer = 0; layer < s.layers; ++layer) {
    const void* const* b = a.blocks + static_cast<size_t>(layer) * kDitBlockPointers;
    const float* m = a.modulation + static_cast<size_t>(layer) * 6 * D;  // s1, sc1, g1, s2, sc2, g2
    // Self-attention: h = LN(tok) (1 + sc1) + s1; q, k RMS-normed and rotated; tok += g1 * o(attn).
    layerNormModulate(a.tok, w.h, N, D, nullptr, nullptr, m, m + D, s.eps, stream);
    qkv(w.h, w.h, N, b, b[8], b[9], w.q, w.k, w.v);
    rope3d(w.q, D, H, hd, s.frames, s.rows, s.cols, s.ropeTheta, stream);
    rope3d(w.k, D, H, hd, s.frames, s.rows, s.cols, s.ropeTheta, stream);
    if (a.attention == DitAttention::Flash) {
      flashAttention(self, tm(w.q), tm(w.k), tm(w.v), tm(w.o), stream);
    } else if (a.attention == DitAttention::Sage) {
      sageAttention(self, tm(w.q), tm(w.k), tm(w.v), tm(w.o), w.attn, w.attnBytes, stream);
    } else {
      SlaOptions o;
      o.topK = a.slaTopK;
      o.projL = b[10];
      slaAttention(self, tm(w.q), tm(w.k), tm(w.v), tm(w.o), o, w.attn, w.attnBytes, cublas, stream);
    }
    gemmBf16(cublas, stream, N, D, D, w.o, b[6], w.y);
    addGated(a.tok, w.y, N, D, f32(b[7]), m + 2 * D, stream);

    // Cross-attention over the text: tok += o2(attn(norm_q(q2(norm3(tok))), norm_k(k2(c)), v2(c))).
    layerNormModulate(a.tok, w.h, N, D, f32(b[11]), f32(b[12]), nullptr, nullptr, s.eps, stream);
    qkv(w.h, a.ctx, L, b + 13, b[21], b[22], w.q, w.k2, w.v2);
    flashAttention(cross, tm(w.q), tm(w.k2), tm(w.v2), tm(w.o), stream);
    gemmBf16(cublas, stream, N, D, D, w.o, b[19], w.y);
    addGated(a.tok, w.y, N, D, f32(b[20]), nullptr, stream);

    // FFN: h = LN(tok) (1 + sc2) + s2; tok += g2 * fc2(gelu(fc1(h))).
    layerNormModulate(a.tok, w.h, N, D, nullptr, nullptr, m + 3 * D, m + 4 * D, s.eps, stream);
    gemmBf16(cublas, stream, N, s.ffn, D, w.h, b[23], w.f);
    biasGelu(w.f, N, s.ffn, f32(b[24]), stream);
    gemmBf16(cublas, stream, N, D, s.ffn, w.f, b[25], w.y);
    addGated(a.tok, w.y, N, D, f32(b[26]), m + 5 * D, stream);
  }
  layerNormModulate(a.tok, w.h, N, D, nullptr, nullptr, a.headMod, a.headMod + D, s.eps, stream);
  gemmBf16(cublas, stream, N, s.patchOut, D, w.h, a.headW, a.out);
  addBias(a.out, N, s.patchOut, a.headB, stream);
}

}  // namespace ff::cuda
