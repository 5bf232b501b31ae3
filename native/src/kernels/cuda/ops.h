// Row-wise and element-wise ops of the DiT forward on the GPU (docs/MODEL.md). The residual
// stream is fp32 (or bf16, where ditForward keeps it so); what feeds a GEMM or attention is bf16. Every function queues one kernel on
// `stream` and checks the launch; pointers are device memory.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace ff::cuda {

// y (bf16) = LN(x) * (1 + scale) + shift, with the affine w, b applied first when given (any of
// w, b, shift, scale may be null). x: [rows, dim] fp32.
void layerNormModulate(const float* x, void* y, int64_t rows, int64_t dim, const float* w, const float* b,
                       const float* shift, const float* scale, float eps, CUstream_st* stream);
// The same, writing y (when non-null) and/or the per-token int8 of the bf16-rounded rows (when q
// is non-null): q: [rows, dim], qScale: [rows], exactly what quantizeRows makes of y.
void layerNormModulateInt8(const float* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w,
                           const float* b, const float* shift, const float* scale, float eps, CUstream_st* stream);
// The same over bf16 rows x (ditForward's bf16 residual stream).
void layerNormModulateInt8Bf16(const void* x, void* y, int8_t* q, float* qScale, int64_t rows, int64_t dim, const float* w,
                               const float* b, const float* shift, const float* scale, float eps, CUstream_st* stream);
// y (bf16) = x (fp32) rounded to nearest, and back (exact); n values.
void f32ToBf16(const float* x, void* y, int64_t n, CUstream_st* stream);
void bf16ToF32(const void* x, float* y, int64_t n, CUstream_st* stream);

// Symmetric per-row int8 of bf16 x: [rows, cols] (row stride ld elements) -> q: [rows, cols],
// scale: [rows] with x ~= q * scale; scale = max|row| / 127, rounding to nearest even (as the CPU
// engine's quantizeRows; a zero row gets scale 0). Per token for activations, per output channel
// for a linear weight [out, in].
void quantizeRows(const void* x, int64_t rows, int64_t cols, int64_t ld, int8_t* q, float* scale, CUstream_st* stream);
// The same as e4m3 (the FFN's FP8 weights, per output channel): scale = max|row| / 448, q the
// e4m3 bytes of x / scale (round to nearest, saturating).
void quantizeRowsFp8(const void* x, int64_t rows, int64_t cols, int64_t ld, uint8_t* q, float* scale, CUstream_st* stream);

// What follows an int8 GEMM acc = xq . wq^T (int32 [rows, cols]): v = xScale[r] * wScale[c] * acc
// + bias[c] (bias may be null), then by kind:
//   Bf16:     y = v (bf16)
//   RmsNorm:  y = rms_norm(bf16(v)) * normW (as rmsNorm on the bf16 path's biased output)
//   Gelu:     g = bf16(gelu_tanh(v)); y = g when y is non-null, and q/qScale = quantizeRows(g) when
//             q is non-null (the next linear's int8 input)
//   Residual: residual (fp32) += gate[c] * v (gate may be null)
enum class DequantKind { Bf16 = 0, RmsNorm = 1, Gelu = 2, Residual = 3 };
struct DequantArgs {
  const int32_t* acc = nullptr;
  const float* xScale = nullptr;  // [rows]
  const float* wScale = nullptr;  // [cols]
  const float* bias = nullptr;    // [cols]
  DequantKind kind = DequantKind::Bf16;
  void* y = nullptr;  // bf16, row stride ldy
  int64_t ldy = 0;
  const float* normW = nullptr;
  float eps = 1e-6f;
  int8_t* q = nullptr;  // [rows, cols]
  float* qScale = nullptr;
  float* residual = nullptr;  // [rows, cols]
  const float* gate = nullptr;
  // RmsNorm only: rope3dTable's table (row r is token r) rotates each head's channel pairs of the
  // normalized row, as rope3dApply would afterwards; ropeHeadDim a multiple of 4, 16-byte table.
  const float* rope = nullptr;
  int64_t ropeHeadDim = 0;
};
void dequantInt8(const DequantArgs& a, int64_t rows, int64_t cols, CUstream_st* stream);
// In place on bf16 x: [rows, dim] (row stride ld elements): x += bias (when given), then
// x = x / sqrt(mean(x^2) + eps) * w; with rope (rope3dTable's table, row r = token r) each head of
// ropeHeadDim channels is then rotated as rope3dApply does: in the same pass where dim, ld and
// ropeHeadDim are multiples of 4, x 8-byte and bias, w and the table 16-byte aligned, else by
// rope3dApply after the norm (its constraints then apply); dim must hold whole heads.
void rmsNorm(void* x, int64_t rows, int64_t dim, int64_t ld, const float* bias, const float* w, float eps,
             CUstream_st* stream, const float* rope = nullptr, int64_t ropeHeadDim = 0);
// In place on bf16 y: [rows, dim]: y += bias.
void addBias(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream);
// 3D RoPE of docs/MODEL.md in place on bf16 x: [tokens, heads, headDim] (token stride ld elements);
// token n sits at (f, r, c) with n = (f * rows + r) * cols + c. headDim and ld multiples of 8, x
// 16-byte aligned (else std::invalid_argument). Builds its cos/sin table in a stream-ordered
// allocation of its own; a caller that rotates more than once builds it once (rope3dTable).
void rope3d(void* x, int64_t ld, int64_t heads, int64_t headDim, int64_t frames, int64_t rows, int64_t cols,
            double theta, CUstream_st* stream);
// The rotation's cos/sin, the same for every head, q and k, and layer: table: [tokens, headDim / 2]
// pairs of floats (cos, sin), of rope3dTableBytes; the angle in double as docs/MODEL.md, stored as float.
size_t rope3dTableBytes(int64_t tokens, int64_t headDim);
void rope3dTable(float* table, int64_t headDim, int64_t frames, int64_t rows, int64_t cols, double theta,
                 CUstream_st* stream);
// In place on bf16 q and k (k may be null): [tokens, heads, headDim], token stride ld elements,
// one launch for both; the constraints of rope3d.
void rope3dApply(void* q, void* k, int64_t ld, int64_t tokens, int64_t heads, int64_t headDim, const float* table,
                 CUstream_st* stream);
// In place on bf16 y: [rows, dim]: y = gelu_tanh(y + bias) (bias may be null).
void biasGelu(void* y, int64_t rows, int64_t dim, const float* bias, CUstream_st* stream);
// x (fp32) += gate * (y + bias), y bf16 [rows, dim]; gate, bias [dim] may be null.
void addGated(float* x, const void* y, int64_t rows, int64_t dim, const float* bias, const float* gate,
              CUstream_st* stream);

}  // namespace ff::cuda
