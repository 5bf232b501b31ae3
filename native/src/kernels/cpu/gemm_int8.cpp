#include "gemm_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace ff::cpu {

namespace {

constexpr int64_t kRowBlock = 32;

// The int8 weight (n, k) whatever the layer's layout.
int8_t weightAt(const Int8Linear& layer, int64_t n, int64_t k) {
  if (layer.path == Variant::Scalar) return layer.weights[static_cast<size_t>(n * layer.inPadded + k)];
  const int64_t kBlocks = layer.inPadded / 64;
  const int64_t tile = (n / 16) * kBlocks + k / 64;
  return layer.weights[static_cast<size_t>(tile * 1024 + ((k % 64) / 4) * 64 + (n % 16) * 4 + k % 4)];
}

Int8Linear layoutFromRows(std::vector<int8_t> rows, std::vector<float> scale, const float* bias,
                          int64_t out, int64_t in, Variant path) {
  requireInt8Variant(path, "W8A8 linear");
  Int8Linear layer;
  layer.out = out;
  layer.in = in;
  layer.inPadded = roundUp(in, 64);
  layer.path = path;
  const int64_t outPadded = roundUp(out, 16);
  scale.resize(static_cast<size_t>(outPadded), 0.0f);
  layer.scale = std::move(scale);
  layer.bias.assign(static_cast<size_t>(outPadded), 0.0f);
  if (bias != nullptr) std::copy(bias, bias + out, layer.bias.begin());
  layer.colSum.assign(static_cast<size_t>(outPadded), 0);
  for (int64_t n = 0; n < out; ++n) {
    int32_t sum = 0;
    for (int64_t k = 0; k < in; ++k) sum += rows[static_cast<size_t>(n * layer.inPadded + k)];
    layer.colSum[static_cast<size_t>(n)] = sum;
  }
  if (path == Variant::Scalar) {
    layer.weights = std::move(rows);
  } else {
    layer.weights.assign(static_cast<size_t>(outPadded * layer.inPadded), 0);
    packInt8Panels(rows.data(), out, in, layer.inPadded, layer.weights.data());
  }
  return layer;
}

}  // namespace

Int8Linear quantizeLinear(const float* w, const float* bias, int64_t out, int64_t in,
                          Variant path) {
  const int64_t inPadded = roundUp(in, 64);
  std::vector<int8_t> rows(static_cast<size_t>(out * inPadded));
  std::vector<float> scale(static_cast<size_t>(out));
  quantizeRowsScalar(w, out, in, in, rows.data(), inPadded, scale.data());
  return layoutFromRows(std::move(rows), std::move(scale), bias, out, in, path);
}

Int8Linear int8LinearFromQuantized(const int8_t* q, const float* scale, const float* bias,
                                   int64_t out, int64_t in, Variant path) {
  const int64_t inPadded = roundUp(in, 64);
  std::vector<int8_t> rows(static_cast<size_t>(out * inPadded), 0);
  for (int64_t n = 0; n < out; ++n) {
    std::memcpy(rows.data() + n * inPadded, q + n * in, static_cast<size_t>(in));
  }
  return layoutFromRows(std::move(rows), std::vector<float>(scale, scale + out), bias, out, in,
                        path);
}

void linearW8A8Reference(const Int8Linear& layer, const float* x, int64_t rows, float* y) {
  std::vector<int8_t> xq(static_cast<size_t>(layer.inPadded));
  float xs = 0;
  for (int64_t m = 0; m < rows; ++m) {
    quantizeRowsScalar(x + m * layer.in, 1, layer.in, layer.in, xq.data(), layer.inPadded, &xs);
    for (int64_t n = 0; n < layer.out; ++n) {
      int32_t acc = 0;
      for (int64_t k = 0; k < layer.in; ++k) acc += int32_t{xq[static_cast<size_t>(k)]} * weightAt(layer, n, k);
      const float s = layer.scale[static_cast<size_t>(n)] * xs;
      y[m * layer.out + n] = std::fma(static_cast<float>(acc), s, layer.bias[static_cast<size_t>(n)]);
    }
  }
}

void linearW8A8(const Int8Linear& layer, const float* x, int64_t rows, float* y) {
  const Int8Linear* layers[1] = {&layer};
  float* ys[1] = {y};
  linearW8A8Fused(layers, ys, 1, rows, x, nullptr, nullptr);
}

void linearW8A8Fused(const Int8Linear* const* layers, float* const* ys, int count, int64_t rows, const float* x,
                     const RowsIn& input, const RowsOut& output) {
  const Int8Linear& first = *layers[0];
  for (int l = 1; l < count; ++l)
    if (layers[l]->in != first.in || layers[l]->path != first.path)
      fail(ErrorCode::Internal, "linearW8A8Fused: layers must share their input width and path");
  if (first.path == Variant::Scalar) {
    // The reference path: the whole input, then each layer, then the output hook.
    std::vector<float> staged;
    if (input) {
      staged.resize(static_cast<size_t>(rows * first.in));
      input(0, rows, staged.data());
      x = staged.data();
    }
    for (int l = 0; l < count; ++l) linearW8A8Reference(*layers[l], x, rows, ys[l]);
    if (output) output(0, rows);
    return;
  }
  const int64_t lda = first.inPadded;
  const int64_t rowsPadded = roundUp(rows, kRowBlock);
  // Quantized activations, reused across calls: a fresh multi-megabyte buffer per call costs
  // page faults and zeroing comparable to the AMX GEMM itself. Rows past `rows` must be zero.
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xs;
  if (xq.size() < static_cast<size_t>(rowsPadded * lda)) xq.resize(static_cast<size_t>(rowsPadded * lda));
  if (xs.size() < static_cast<size_t>(rowsPadded)) xs.resize(static_cast<size_t>(rowsPadded));
  std::memset(xq.data() + rows * lda, 0, static_cast<size_t>((rowsPadded - rows) * lda));
  std::fill(xs.begin() + rows, xs.begin() + rowsPadded, 0.0f);
  // The workers must see the calling thread's buffers: a thread_local named inside the lambda
  // would be each worker's own.
  int8_t* const xqRows = xq.data();
  float* const xsRows = xs.data();
  const int64_t blocks = rowsPadded / kRowBlock;
  parallelChunks(blocks, [&](int64_t begin, int64_t end) {
    const int64_t m0 = begin * kRowBlock, m1 = std::min(rows, end * kRowBlock);
    if (m0 >= m1) return;
    // The input rows of this chunk, staged per worker when a hook makes them (fp32, then
    // quantized once for every layer).
    thread_local std::vector<float> staged;
    const float* src = x + m0 * first.in;
    if (input) {
      if (staged.size() < static_cast<size_t>((m1 - m0) * first.in)) staged.resize(static_cast<size_t>((m1 - m0) * first.in));
      input(m0, m1, staged.data());
      src = staged.data();
    }
    quantizeRows(src, m1 - m0, first.in, first.in, xqRows + m0 * lda, lda, xsRows + m0);
    const int8_t* a = xqRows + m0 * lda;
    const float* s = xsRows + m0;
    for (int l = 0; l < count; ++l) {
      const Int8Linear& layer = *layers[l];
      float* ym = ys[l] + m0 * layer.out;
      switch (layer.path) {
        case Variant::Amx: {
          // AMX works on whole 16-row tiles; a ragged tail goes through a scratch output.
          const int64_t full = (m1 - m0) / 16 * 16;
          if (full > 0) gemmInt8RowsAmx(layer, a, s, full, ym, layer.out);
          if (full < m1 - m0) {
            std::vector<float> tail(static_cast<size_t>(16 * layer.out));
            gemmInt8RowsAmx(layer, a + full * lda, s + full, 16, tail.data(), layer.out);
            std::copy(tail.begin(), tail.begin() + (m1 - m0 - full) * layer.out, ym + full * layer.out);
          }
          break;
        }
        case Variant::Vnni:
          gemmInt8RowsVnni(layer, a, s, m1 - m0, ym, layer.out);
          break;
        default:
          gemmInt8RowsAvx2(layer, a, s, m1 - m0, ym, layer.out);
          break;
      }
    }
    if (output) output(m0, m1);
  });
}

}  // namespace ff::cpu
