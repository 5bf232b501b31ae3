#pragma once
// W8A8 linear layer: per-output-channel INT8 weights, per-token dynamic INT8 activations,
// INT32 accumulation (AMX tdpbssd, AVX-512 VNNI vpdpbusd, AVX2 vpmaddwd or scalar), and the
// dequantization and bias fused into the store.
#include <cstdint>
#include <functional>
#include <vector>

#include "quant.h"

namespace ff::cpu {

struct Int8Linear {
  int64_t out = 0, in = 0;  // the weight is [out, in]; y = x W^T + b
  int64_t inPadded = 0;     // in rounded up to 64: the activation row stride
  Variant path = Variant::Scalar;
  // Scalar: [out, inPadded] row-major. Otherwise: packInt8Panels layout (16-column panels).
  std::vector<int8_t> weights;
  std::vector<float> scale;     // [out] weight scale per output channel
  std::vector<int32_t> colSum;  // [out] sum over in of the int8 weights (the u8 offset trick)
  std::vector<float> bias;      // [out], zeros when the layer has none
};

// Quantizes w: [out, in] per output channel (absmax / 127) and packs it for path.
Int8Linear quantizeLinear(const float* w, const float* bias, int64_t out, int64_t in,
                          Variant path);
// Takes weights stored pre-quantized: q: [out, in] int8, scale: [out].
Int8Linear int8LinearFromQuantized(const int8_t* q, const float* scale, const float* bias,
                                   int64_t out, int64_t in, Variant path);

// x: [rows, in] (row stride in) -> y: [rows, out] (row stride out); y = x W^T + b computed as
// dequant(quant_per_token(x) . Wq^T) + b, on the layer's path, across all worker threads.
void linearW8A8(const Int8Linear& layer, const float* x, int64_t rows, float* y);
// Row-block hooks of linearW8A8Fused, called on worker threads for disjoint row ranges:
// input(m0, m1, dst) writes input rows [m0, m1) to dst ([m1 - m0, in], contiguous);
// output(m0, m1) runs once every layer's rows [m0, m1) are stored.
using RowsIn = std::function<void(int64_t m0, int64_t m1, float* dst)>;
using RowsOut = std::function<void(int64_t m0, int64_t m1)>;
// Several layers sharing one input (all with the same `in` and path): ys[l] = x W_l^T + b_l. Each
// row block's input is made (by `input` when given, else read from x) and quantized once for all
// layers, and `output` (may be null) post-processes the block while it is still in cache: one
// pass over the rows for norm -> linears -> norms/activations/residuals.
void linearW8A8Fused(const Int8Linear* const* layers, float* const* ys, int count, int64_t rows, const float* x,
                     const RowsIn& input, const RowsOut& output);

// Scalar INT8 reference, the oracle of the fast paths: the same quantization, plain loops.
void linearW8A8Reference(const Int8Linear& layer, const float* x, int64_t rows, float* y);

// The row-block kernels behind linearW8A8. xq: [rows, inPadded] int8 with per-row scale xs.
// rows is a multiple of 16 for the AMX kernel (padded rows are zero and their y is scratch).
void gemmInt8RowsAvx2(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy);
void gemmInt8RowsVnni(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                      float* y, int64_t ldy);
void gemmInt8RowsAmx(const Int8Linear& layer, const int8_t* xq, const float* xs, int64_t rows,
                     float* y, int64_t ldy);

}  // namespace ff::cpu
