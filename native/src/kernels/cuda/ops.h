// Row-wise and element-wise ops of the DiT forward on the GPU (docs/MODEL.md). The residual
// stream is fp32; what feeds a GEMM or attention is bf16. Every function queues one kernel on
// `stream` and checks the launch; pointers are device memory.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace ff::cuda {

// y (bf16) = LN(x) * (1 + scale) + shift, with the affine w, b applied first when given (any of
// w, b, shift, scale may be null). x: [rows, dim] fp32.
void layerNormModulate(const float* x, void* y, int64_t rows, int64_t dim, const float* w, const float* b,
                       const float* shift, const float* scale, float eps, CUstream_st* stream);
// In place on bf16 x: [rows, dim] (row stride ld elements): x += bias (when given), then
// x = x / sqrt(mean(x^2) + eps) * w.
void rmsNorm(void* x, int64_t rows, int64_t dim, int64_t ld, const float* bias, const float* w, float eps,
             CUstream_st* stream);
// In place on bf16 y: [rows, dim]: y += bias.
void addBias(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream);
// 3D RoPE of docs/MODEL.md in place on bf16 x: [tokens, heads, headDim] (token stride ld elements);
// token n sits at (f, r, c) with n = (f * rows + r) * cols + c.
void rope3d(void* x, int64_t ld, int64_t heads, int64_t headDim, int64_t frames, int64_t rows, int64_t cols,
            double theta, CUstream_st* stream);
// In place on bf16 y: [rows, dim]: y = gelu_tanh(y + bias) (bias may be null).
void biasGelu(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream);
// x (fp32) += gate * (y + bias), y bf16 [rows, dim]; gate, bias [dim] may be null.
void addGated(float* x, const void* y, int64_t rows, int64_t dim, const float* bias, const float* gate,
              CUstream_st* stream);

}  // namespace ff::cuda
