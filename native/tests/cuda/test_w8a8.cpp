// W8A8 on the GPU (kernels/cuda/ops.h quantization and dequantization, dit_forward's int8
// linears) on fresh random inputs with every output poisoned (0xFF bytes) before each run: the
// quantization against the CPU engine's quantizeRowsScalar (exact), each dequantization epilogue
// of an int8 cuBLAS product against the unquantized product in double, and the DiT forward with
// int8 linears (all, and mixed with bf16 ones) against its bf16 path on ragged token counts; the
// FFN's FP8 form (e4m3 weights and GELU output) likewise.
// Called from framefleet_cuda_tests' main (test_cuda.cpp).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/dit_forward.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/ops.h"

using W8a8Report = void (*)(const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
                             double maxRel, double minCos);
// test_cuda.cpp's randomBf16: normal values (sd, mean) rounded to bf16, so that host and device see
// the same numbers.
using W8a8Random = std::vector<float> (*)(size_t n, float sd, float mean);

namespace {

namespace fc = ff::cuda;
using Dev = std::unique_ptr<void, cudaError_t (*)(void*)>;

W8a8Report g_check = nullptr;
W8a8Random g_random = nullptr;
int g_w8a8Failures = 0;

Dev poisoned(size_t bytes) {
  void* p = nullptr;
  FF_CUDA(cudaMalloc(&p, bytes));
  FF_CUDA(cudaMemset(p, 0xFF, bytes));
  return Dev(p, cudaFree);
}

template <typename T>
Dev toDevice(const std::vector<T>& h) {
  Dev d = poisoned(h.size() * sizeof(T));
  FF_CUDA(cudaMemcpy(d.get(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <typename T>
std::vector<T> toHost(const Dev& d, size_t n) {
  std::vector<T> h(n);
  FF_CUDA(cudaDeviceSynchronize());
  FF_CUDA(cudaMemcpy(h.data(), d.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

std::vector<float> normals(size_t n, float sd, float mean = 0.0f) { return g_random(n, sd, mean); }

Dev bf16Device(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = __float2bfloat16_rn(v[i]);
  return toDevice(h);
}

std::vector<float> bf16Host(const Dev& d, size_t n) {
  const std::vector<__nv_bfloat16> h = toHost<__nv_bfloat16>(d, n);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = __bfloat162float(h[i]);
  return v;
}

float roundBf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// e4m3 bytes on the device, decoded.
std::vector<float> fp8Host(const Dev& d, size_t n) {
  const std::vector<uint8_t> raw = toHost<uint8_t>(d, n);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    __nv_fp8_e4m3 f;
    f.__x = raw[i];
    v[i] = static_cast<float>(f);
  }
  return v;
}

// quantizeRowsFp8 of x (bf16 values on the host): each row's scale is max|row| / 448 exactly, the
// row's absmax decodes to 448, and every entry is within half an e4m3 step of x / scale.
void testQuantizeRowsFp8() {
  const int64_t rows = 29, cols = 520;
  std::vector<float> x = normals(rows * cols, 0.7f, 0.05f);
  for (int64_t c = 0; c < cols; ++c) x[4 * cols + c] = 0.0f;  // a zero row: scale 0, zeros
  const Dev dx = bf16Device(x), dq = poisoned(rows * cols), ds = poisoned(rows * 4);
  fc::quantizeRowsFp8(dx.get(), rows, cols, cols, static_cast<uint8_t*>(dq.get()), static_cast<float*>(ds.get()), nullptr);
  const std::vector<float> q = fp8Host(dq, rows * cols), sc = toHost<float>(ds, rows);
  size_t wrong = 0;
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
    wrong += sc[r] != amax / 448.0f;
    float qmax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float want = amax > 0.0f ? x[r * cols + c] * (448.0f / amax) : 0.0f, got = q[r * cols + c];
      qmax = std::max(qmax, std::fabs(got));
      // e4m3: 3 mantissa bits over normals (>= 2^-6), steps of 2^-9 below.
      const float halfStep = std::max(std::ldexp(std::fabs(want), -4), std::ldexp(1.0f, -10));
      wrong += !(std::fabs(got - want) <= halfStep);
    }
    wrong += amax > 0.0f ? qmax != 448.0f : qmax != 0.0f;
  }
  if (wrong) ++g_w8a8Failures;
  std::printf("%-58s entries off: %zu  %s\n", "quantizeRowsFp8 bf16 29x520 (a zero row)", wrong, wrong ? "FAIL" : "PASS");
}

// q/scale against quantizeRowsScalar of x (host values): entries that differ, reported exactly.
void expectQuantized(const std::string& name, const std::vector<float>& x, int64_t rows, int64_t cols, const Dev& q,
                     const Dev& scale) {
  std::vector<int8_t> refQ(x.size());
  std::vector<float> refS(rows);
  ff::cpu::quantizeRowsScalar(x.data(), rows, cols, cols, refQ.data(), cols, refS.data());
  const std::vector<int8_t> gotQ = toHost<int8_t>(q, x.size());
  const std::vector<float> gotS = toHost<float>(scale, rows);
  size_t wrong = 0;
  for (size_t i = 0; i < x.size(); ++i) wrong += gotQ[i] != refQ[i];
  for (int64_t r = 0; r < rows; ++r) wrong += gotS[r] != refS[r];
  if (wrong) ++g_w8a8Failures;
  std::printf("%-58s entries differing from the CPU's: %zu  %s\n", name.c_str(), wrong, wrong ? "FAIL" : "PASS");
}

std::vector<float> dequantized(const Dev& q, const Dev& scale, int64_t rows, int64_t cols) {
  const std::vector<int8_t> hq = toHost<int8_t>(q, static_cast<size_t>(rows * cols));
  const std::vector<float> hs = toHost<float>(scale, rows);
  std::vector<float> v(hq.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = hq[i] * hs[i / cols];
  return v;
}

void testQuantizeRows() {
  const int64_t rows = 37, cols = 300, ld = 304;
  std::vector<float> x = normals(rows * ld, 1.5f, 0.2f);
  for (int64_t c = 0; c < ld; ++c) x[5 * ld + c] = 0.0f;  // a zero row gets scale 0
  const Dev dx = bf16Device(x), dq = poisoned(rows * cols), ds = poisoned(rows * 4);
  fc::quantizeRows(dx.get(), rows, cols, ld, static_cast<int8_t*>(dq.get()), static_cast<float*>(ds.get()), nullptr);
  std::vector<float> packed(rows * cols);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(&packed[r * cols], &x[r * ld], cols * 4);
  expectQuantized("quantizeRows bf16 37x300 (ld 304, a zero row)", packed, rows, cols, dq, ds);
  // Eight channels at a time: a row held in registers (1536) and one longer than they hold.
  for (const int64_t c8 : {int64_t{1536}, int64_t{12296}}) {
    const int64_t ld8 = c8 + 8;
    std::vector<float> y = normals(rows * ld8, 1.5f, 0.2f);
    for (int64_t c = 0; c < ld8; ++c) y[3 * ld8 + c] = 0.0f;
    y[7 * ld8 + c8 - 1] = 40.0f;  // the row's absmax in its last vector
    const Dev dy = bf16Device(y), dq8 = poisoned(rows * c8), ds8 = poisoned(rows * 4);
    fc::quantizeRows(dy.get(), rows, c8, ld8, static_cast<int8_t*>(dq8.get()), static_cast<float*>(ds8.get()), nullptr);
    std::vector<float> p8(rows * c8);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(&p8[r * c8], &y[r * ld8], c8 * 4);
    expectQuantized("quantizeRows bf16 37x" + std::to_string(c8) + " (ld " + std::to_string(ld8) + ", vector kernel)", p8, rows,
                    c8, dq8, ds8);
  }
}

// The layer norm + modulation with its int8 output: q is exactly quantizeRows of its own bf16 y,
// and y alone or q alone come out the same as both together. dim 384 and 1536 take the
// warp-per-row kernel, 320 the general one; affine adds the norm's own w, b (as norm3).
void testLayerNormInt8(int64_t dim, bool affine) {
  const int64_t rows = 333;
  const std::vector<float> x = normals(rows * dim, 2.0f, 0.5f), shift = normals(dim, 0.5f), scale = normals(dim, 0.2f),
                           w = normals(dim, 1.0f, 1.0f), b = normals(dim, 0.3f);
  const Dev dx = toDevice(x), dshift = toDevice(shift), dscale = toDevice(scale), dw = toDevice(w), db = toDevice(b);
  const Dev dy = poisoned(rows * dim * 2), dq = poisoned(rows * dim), ds = poisoned(rows * 4);
  auto run = [&](bool y, bool q) {
    fc::layerNormModulateInt8(static_cast<float*>(dx.get()), y ? dy.get() : nullptr, q ? static_cast<int8_t*>(dq.get()) : nullptr,
                              static_cast<float*>(ds.get()), rows, dim, affine ? static_cast<float*>(dw.get()) : nullptr,
                              affine ? static_cast<float*>(db.get()) : nullptr, static_cast<float*>(dshift.get()),
                              static_cast<float*>(dscale.get()), 1e-6f, nullptr);
  };
  const std::string shape = std::to_string(rows) + "x" + std::to_string(dim) + (affine ? " affine" : "");
  run(true, true);
  const std::vector<float> y = bf16Host(dy, rows * dim);
  expectQuantized("layer norm + modulate, int8 out = quantizeRows(y) " + shape, y, rows, dim, dq, ds);
  std::vector<float> ref(x.size());
  ff::layer_norm_ref(x.data(), ref.data(), rows, dim, affine ? w.data() : nullptr, affine ? b.data() : nullptr, 1e-6f);
  ff::modulate(ref.data(), rows, dim, shift.data(), scale.data());
  g_check("layer norm + modulate, int8 out dequantized " + shape, dequantized(dq, ds, rows, dim), ref, 2e-2, 0.9995);
  FF_CUDA(cudaMemset(dq.get(), 0xFF, rows * dim));
  run(false, true);
  expectQuantized("layer norm + modulate, int8 out only " + shape, y, rows, dim, dq, ds);
  FF_CUDA(cudaMemset(dy.get(), 0xFF, rows * dim * 2));
  run(true, false);
  g_check("layer norm + modulate, bf16 out only " + shape, bf16Host(dy, rows * dim), ref, 1e-2, 0.9999);
  // Over bf16 rows (the bf16 residual stream): x's values are bf16 already, so the same bits.
  const Dev x16 = bf16Device(x), dy16 = poisoned(rows * dim * 2), dq16 = poisoned(rows * dim), ds16 = poisoned(rows * 4);
  fc::layerNormModulateInt8Bf16(x16.get(), dy16.get(), static_cast<int8_t*>(dq16.get()), static_cast<float*>(ds16.get()), rows, dim,
                                affine ? static_cast<float*>(dw.get()) : nullptr, affine ? static_cast<float*>(db.get()) : nullptr,
                                static_cast<float*>(dshift.get()), static_cast<float*>(dscale.get()), 1e-6f, nullptr);
  g_check("layer norm + modulate over bf16 rows = over fp32, " + shape, bf16Host(dy16, rows * dim), y, 0.0, 0.9999999);
  expectQuantized("layer norm + modulate over bf16 rows, int8 out " + shape, y, rows, dim, dq16, ds16);
  // The stream's conversions: fp32 -> bf16 rounds to nearest (x is exact in bf16: unchanged), back is exact.
  const Dev back = poisoned(rows * dim * 4), x16b = poisoned(rows * dim * 2);
  fc::f32ToBf16(static_cast<float*>(dx.get()), x16b.get(), rows * dim, nullptr);
  fc::bf16ToF32(x16b.get(), static_cast<float*>(back.get()), rows * dim, nullptr);
  g_check("fp32 -> bf16 -> fp32 of bf16 values, " + shape, toHost<float>(back, rows * dim), x, 0.0, 0.9999999);
}

// One W8A8 linear x [rows, k] . w [n, k]^T + bias through each dequantization kind against the
// unquantized product in double (what the bf16 path approximates).
void testDequant(cublasHandle_t cublas, int64_t rows, int64_t n, int64_t k) {
  const std::vector<float> x = normals(rows * k, 1.0f, 0.1f), w = normals(n * k, 0.05f), bias = normals(n, 0.3f),
                           normW = normals(n, 0.2f, 1.0f), gate = normals(n, 0.5f), res0 = normals(rows * n, 1.0f);
  std::vector<float> v(rows * n);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias[j];
      for (int64_t t = 0; t < k; ++t) s += double{x[i * k + t]} * w[j * k + t];
      v[i * n + j] = static_cast<float>(s);
    }
  const Dev dx = bf16Device(x), dw = bf16Device(w), db = toDevice(bias), dnw = toDevice(normW), dg = toDevice(gate);
  const Dev xq = poisoned(rows * k), xs = poisoned(rows * 4), wq = poisoned(n * k), ws = poisoned(n * 4), acc = poisoned(rows * n * 4);
  fc::quantizeRows(dx.get(), rows, k, k, static_cast<int8_t*>(xq.get()), static_cast<float*>(xs.get()), nullptr);
  fc::quantizeRows(dw.get(), n, k, k, static_cast<int8_t*>(wq.get()), static_cast<float*>(ws.get()), nullptr);
  fc::gemmInt8(cublas, nullptr, static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), static_cast<int8_t*>(xq.get()),
               static_cast<int8_t*>(wq.get()), static_cast<int32_t*>(acc.get()));
  const std::string shape = std::to_string(rows) + "x" + std::to_string(n) + "x" + std::to_string(k);
  auto args = [&](fc::DequantKind kind, void* y) {
    fc::DequantArgs a;
    a.acc = static_cast<int32_t*>(acc.get());
    a.xScale = static_cast<float*>(xs.get());
    a.wScale = static_cast<float*>(ws.get());
    a.bias = static_cast<float*>(db.get());
    a.kind = kind;
    a.y = y;
    a.ldy = n;
    return a;
  };

  const Dev y = poisoned(rows * n * 2);
  fc::dequantInt8(args(fc::DequantKind::Bf16, y.get()), rows, n, nullptr);
  g_check("w8a8 linear + bias " + shape, bf16Host(y, rows * n), v, 2e-2, 0.9995);

  std::vector<float> rounded(v.size()), ref(v.size());
  for (size_t i = 0; i < v.size(); ++i) rounded[i] = roundBf16(v[i]);
  ff::rms_norm_ref(rounded.data(), ref.data(), rows, n, normW.data(), 1e-6f);
  FF_CUDA(cudaMemset(y.get(), 0xFF, rows * n * 2));
  fc::DequantArgs rn = args(fc::DequantKind::RmsNorm, y.get());
  rn.normW = static_cast<float*>(dnw.get());
  fc::dequantInt8(rn, rows, n, nullptr);
  g_check("w8a8 linear + bias + rms norm " + shape, bf16Host(y, rows * n), ref, 2e-2, 0.9995);
  {
    // The rotation in the norm's store gives the bits of rope3dApply after it (heads of 8 channels,
    // the tokens one row of the grid).
    const int64_t hd = 8;
    const Dev table = poisoned(fc::rope3dTableBytes(rows, hd)), yr = poisoned(rows * n * 2);
    fc::rope3dTable(static_cast<float*>(table.get()), hd, 1, 1, rows, 10000.0, nullptr);
    fc::rope3dApply(y.get(), nullptr, n, rows, n / hd, hd, static_cast<float*>(table.get()), nullptr);
    fc::DequantArgs rr = rn;
    rr.y = yr.get();
    rr.rope = static_cast<float*>(table.get());
    rr.ropeHeadDim = hd;
    fc::dequantInt8(rr, rows, n, nullptr);
    g_check("w8a8 linear + rms norm + rope = rope3dApply after, " + shape, bf16Host(yr, rows * n), bf16Host(y, rows * n), 0.0,
            0.9999999);
  }

  ref = v;
  ff::gelu_ref(ref.data(), static_cast<int64_t>(ref.size()));
  FF_CUDA(cudaMemset(y.get(), 0xFF, rows * n * 2));
  const Dev gq = poisoned(rows * n), gs = poisoned(rows * 4);
  fc::DequantArgs ge = args(fc::DequantKind::Gelu, y.get());
  ge.q = static_cast<int8_t*>(gq.get());
  ge.qScale = static_cast<float*>(gs.get());
  fc::dequantInt8(ge, rows, n, nullptr);
  const std::vector<float> g = bf16Host(y, rows * n);
  g_check("w8a8 linear + bias + gelu " + shape, g, ref, 2e-2, 0.9995);
  expectQuantized("w8a8 linear + gelu, int8 out = quantizeRows(gelu) " + shape, g, rows, n, gq, gs);

  const Dev res = toDevice(res0);
  fc::DequantArgs rs = args(fc::DequantKind::Residual, nullptr);
  rs.residual = static_cast<float*>(res.get());
  rs.gate = static_cast<float*>(dg.get());
  fc::dequantInt8(rs, rows, n, nullptr);
  std::vector<float> delta = toHost<float>(res, rows * n);
  for (size_t i = 0; i < delta.size(); ++i) {
    delta[i] -= res0[i];
    ref[i] = gate[i % n] * v[i];
  }
  g_check("w8a8 linear + bias, residual += gate * y " + shape, delta, ref, 2e-2, 0.9995);

#ifdef FF_CUDA_HAVE_CUTLASS
  // The GEMM with the dequantization in its epilogue, on the same quantized operands.
  if (!fc::gemmInt8DequantAvailable()) return;
  auto fused = [&](bool gelu) {
    FF_CUDA(cudaMemset(y.get(), 0xFF, rows * n * 2));
    fc::gemmInt8Dequant(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), static_cast<int8_t*>(xq.get()),
                        static_cast<int8_t*>(wq.get()), static_cast<float*>(xs.get()), static_cast<float*>(ws.get()),
                        static_cast<float*>(db.get()), gelu, y.get(), n, nullptr);
    FF_CUDA(cudaDeviceSynchronize());
    return bf16Host(y, rows * n);
  };
  if (k % 16 != 0 || n % 8 != 0) {
    bool refused = false;
    try {
      fused(false);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    if (!refused) ++g_w8a8Failures;
    std::printf("%-58s %s\n", ("fused w8a8 GEMM refuses k % 16 != 0 or n % 8 != 0, " + shape).c_str(), refused ? "PASS" : "FAIL");
    return;
  }
  g_check("fused w8a8 GEMM + bias " + shape, fused(false), v, 2e-2, 0.9995);
  std::vector<float> geluRef = v;
  ff::gelu_ref(geluRef.data(), static_cast<int64_t>(geluRef.size()));
  g_check("fused w8a8 GEMM + bias + gelu " + shape, fused(true), geluRef, 2e-2, 0.9995);
  // The residual form, in place on fp32: with the gate (ref still holds gate * v), then without.
  for (const bool gated : {true, false}) {
    const Dev fr = toDevice(res0);
    fc::gemmInt8DequantResidual(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), static_cast<int8_t*>(xq.get()),
                                static_cast<int8_t*>(wq.get()), static_cast<float*>(xs.get()), static_cast<float*>(ws.get()),
                                static_cast<float*>(db.get()), gated ? static_cast<float*>(dg.get()) : nullptr,
                                static_cast<float*>(fr.get()), n, false, nullptr);
    std::vector<float> d = toHost<float>(fr, rows * n);
    for (size_t i = 0; i < d.size(); ++i) d[i] -= res0[i];
    g_check(std::string("fused w8a8 GEMM, residual += ") + (gated ? "gate * y " : "y ") + shape, d, gated ? ref : v, 2e-2, 0.9995);
  }
  // The bf16 residual stream: the same fp32 sum as on an fp32 stream holding the same (bf16)
  // values, rounded once to bf16.
  const std::vector<float> res16 = bf16Host(bf16Device(res0), res0.size());
  auto residualOf = [&](bool bf16) {
    const Dev fr = bf16 ? bf16Device(res16) : toDevice(res16);
    fc::gemmInt8DequantResidual(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), static_cast<int8_t*>(xq.get()),
                                static_cast<int8_t*>(wq.get()), static_cast<float*>(xs.get()), static_cast<float*>(ws.get()),
                                static_cast<float*>(db.get()), static_cast<float*>(dg.get()), fr.get(), n, bf16, nullptr);
    return bf16 ? bf16Host(fr, rows * n) : toHost<float>(fr, rows * n);
  };
  if (n % 8 == 0) {
    const std::vector<float> sum32 = residualOf(false), sum16 = residualOf(true);
    g_check("fused w8a8 GEMM, bf16 residual = bf16(fp32 residual) " + shape, sum16, bf16Host(bf16Device(sum32), sum32.size()), 0.0,
            0.9999999);
  }
  // The 2 x 1 cluster (TMA multicast of the weight tiles) computes each output as the 1 x 1 one
  // does (exact int32 products, the same epilogue): the same bits, on both schedules.
  for (const char* mode : {"coop", "pingpong"}) {
    setenv("FF_CUDA_INT8_GEMM_SCHEDULE", mode, 1);
    setenv("FF_CUDA_INT8_GEMM_CLUSTER", "1x1", 1);
    const std::vector<float> one = fused(true);
    setenv("FF_CUDA_INT8_GEMM_CLUSTER", "2x1", 1);
    const std::vector<float> two = fused(true);
    unsetenv("FF_CUDA_INT8_GEMM_CLUSTER");
    unsetenv("FF_CUDA_INT8_GEMM_SCHEDULE");
    g_check(std::string("fused w8a8 GEMM cluster 2x1 = 1x1 (") + mode + ") " + shape, two, one, 0.0, 0.9999999);
  }
  if (n % 16 != 0) return;
  // The FFN's FP8 form: gelu written as e4m3 by the epilogue (within e4m3's rounding of the exact
  // value)...
  const Dev y8 = poisoned(rows * n);
  fc::gemmInt8DequantFp8(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), static_cast<int8_t*>(xq.get()),
                         static_cast<int8_t*>(wq.get()), static_cast<float*>(xs.get()), static_cast<float*>(ws.get()),
                         static_cast<float*>(db.get()), y8.get(), n, nullptr);
  FF_CUDA(cudaDeviceSynchronize());
  g_check("fused w8a8 GEMM + bias + gelu, e4m3 out " + shape, fp8Host(y8, rows * n), geluRef, 4e-2, 0.999);
  // ... and the e4m3 x e4m3 GEMM into the gated residual on operands from quantizeRowsFp8 (one
  // scale for all of x), against the product of the decoded operands in double.
  const Dev x8 = poisoned(rows * k), x8s = poisoned(rows * 4), w8 = poisoned(n * k), w8s = poisoned(n * 4);
  fc::quantizeRowsFp8(dx.get(), rows, k, k, static_cast<uint8_t*>(x8.get()), static_cast<float*>(x8s.get()), nullptr);
  fc::quantizeRowsFp8(dw.get(), n, k, k, static_cast<uint8_t*>(w8.get()), static_cast<float*>(w8s.get()), nullptr);
  const std::vector<float> hx = fp8Host(x8, rows * k), hw = fp8Host(w8, n * k), hws = toHost<float>(w8s, n);
  const float xMul = 0.01f;
  std::vector<float> want(rows * n);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0.0;
      for (int64_t t = 0; t < k; ++t) dot += double{hx[i * k + t]} * hw[j * k + t];
      want[i * n + j] = static_cast<float>(gate[j] * (xMul * double{hws[j]} * dot + bias[j]));
    }
  // Fast accumulation on both schedules (and the 2 x 1 cluster on ping-pong), and the promoted
  // accumulation.
  for (const char* mode : {"coop", "pingpong", "pingpong 2x1", "promoted"}) {
    const bool promoted = std::strcmp(mode, "promoted") == 0, cluster = std::strcmp(mode, "pingpong 2x1") == 0;
    if (promoted) setenv("FF_CUDA_FP8_ACCUM", "promoted", 1);
    else setenv("FF_CUDA_INT8_GEMM_SCHEDULE", cluster ? "pingpong" : mode, 1);
    if (cluster) setenv("FF_CUDA_INT8_GEMM_CLUSTER", "2x1", 1);
    const Dev fr = toDevice(res0);
    fc::gemmFp8DequantResidual(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), x8.get(), w8.get(), xMul,
                               static_cast<float*>(w8s.get()), static_cast<float*>(db.get()), static_cast<float*>(dg.get()),
                               static_cast<float*>(fr.get()), n, false, nullptr);
    unsetenv("FF_CUDA_FP8_ACCUM");
    unsetenv("FF_CUDA_INT8_GEMM_SCHEDULE");
    unsetenv("FF_CUDA_INT8_GEMM_CLUSTER");
    std::vector<float> d = toHost<float>(fr, rows * n);
    for (size_t i = 0; i < d.size(); ++i) d[i] -= res0[i];
    g_check("fused e4m3 GEMM (" + std::string(promoted ? "promoted" : mode) + "), residual += gate * y " + shape, d, want,
            1e-3, 0.99999);
  }
  // ... and into a bf16 residual stream (the default schedule): the exact sum rounded to bf16.
  const Dev fr16 = bf16Device(res16);
  fc::gemmFp8DequantResidual(static_cast<int>(rows), static_cast<int>(n), static_cast<int>(k), x8.get(), w8.get(), xMul,
                             static_cast<float*>(w8s.get()), static_cast<float*>(db.get()), static_cast<float*>(dg.get()),
                             fr16.get(), n, true, nullptr);
  std::vector<float> want16(want.size());
  for (size_t i = 0; i < want.size(); ++i) want16[i] = res16[i] + want[i];
  g_check("fused e4m3 GEMM, bf16 residual += gate * y " + shape, bf16Host(fr16, rows * n), want16, 5e-3, 0.99998);
#endif
}

// A random DiT of the given size on the device: the per-block pointers of dit_forward.h.
struct RandomDit {
  fc::DitShape s;
  std::vector<Dev> keep;
  std::vector<const void*> blocks;
  std::vector<float> tok;
  Dev ctx, mod, headMod, headW, headB;

  const void* add(Dev d) {
    keep.push_back(std::move(d));
    return keep.back().get();
  }
  explicit RandomDit(const fc::DitShape& shape)
      : s(shape), ctx(nullptr, cudaFree), mod(nullptr, cudaFree), headMod(nullptr, cudaFree), headW(nullptr, cudaFree),
        headB(nullptr, cudaFree) {
    const size_t D = s.dim, F = s.ffn;
    for (int l = 0; l < s.layers; ++l)
      for (int p = 0; p < fc::kDitBlockPointers; ++p) {
        const bool matrix = p == 0 || p == 2 || p == 4 || p == 6 || p == 13 || p == 15 || p == 17 || p == 19 || p == 23 || p == 25;
        if (p == 10) {
          blocks.push_back(nullptr);  // proj_l: only SLA reads it
        } else if (matrix) {
          blocks.push_back(add(bf16Device(normals((p == 23 || p == 25 ? F : D) * D, 0.05f))));
        } else {
          const bool normWeight = p == 8 || p == 9 || p == 11 || p == 21 || p == 22;
          blocks.push_back(add(toDevice(normals(p == 24 ? F : D, normWeight ? 0.1f : 0.2f, normWeight ? 1.0f : 0.0f))));
        }
      }
    tok = normals(static_cast<size_t>(s.tokens) * D, 1.0f);
    ctx = bf16Device(normals(static_cast<size_t>(s.ctxTokens) * D, 1.0f));
    mod = toDevice(normals(static_cast<size_t>(s.layers) * 6 * D, 0.1f));
    headMod = toDevice(normals(2 * D, 0.1f));
    headW = bf16Device(normals(static_cast<size_t>(s.patchOut) * D, 0.05f));
    headB = toDevice(normals(s.patchOut, 0.1f));
  }

  // The block outputs' velocity (bf16 [tokens, patchOut]) then the final residual stream.
  std::vector<float> forward(unsigned int8Linears, const void* int8Weights, float* stageMs, cublasHandle_t cublas,
                             fc::DitAttention attention = fc::DitAttention::Flash) {
    const size_t scratchBytes = fc::ditScratchBytes(s, int8Linears != 0);
    const Dev scratch = poisoned(scratchBytes), t = toDevice(tok), out = poisoned(static_cast<size_t>(s.tokens) * s.patchOut * 2);
    fc::DitArgs a;
    a.tok = static_cast<float*>(t.get());
    a.ctx = ctx.get();
    a.modulation = static_cast<float*>(mod.get());
    a.blocks = blocks.data();
    a.headMod = static_cast<float*>(headMod.get());
    a.headW = headW.get();
    a.headB = static_cast<float*>(headB.get());
    a.out = out.get();
    a.int8Linears = int8Linears;
    a.int8Weights = int8Weights;
    a.stageMs = stageMs;
    a.attention = attention;
    fc::ditForward(s, a, scratch.get(), scratchBytes, cublas, nullptr);
    std::vector<float> r = bf16Host(out, static_cast<size_t>(s.tokens) * s.patchOut);
    const std::vector<float> ht = toHost<float>(t, tok.size());
    r.insert(r.end(), ht.begin(), ht.end());
    return r;
  }
};

void testDitForward(cublasHandle_t cublas, const fc::DitShape& s) {
  RandomDit dit(s);
  const size_t wBytes = fc::ditInt8WeightBytes(s);
  const Dev qw = poisoned(wBytes);
  fc::ditQuantizeWeights(s, dit.blocks.data(), dit.headW.get(), qw.get(), wBytes, nullptr);
  const std::vector<float> ref = dit.forward(0, nullptr, nullptr, cublas);
  const std::string shape = std::to_string(s.tokens) + " tokens, dim " + std::to_string(s.dim) + ", ffn " + std::to_string(s.ffn);
  setenv("FF_CUDA_INT8_GEMM", "cublas", 1);  // cuBLAS's int32 product and dequantInt8
  for (const unsigned mask : {fc::kDitAllLinears, 0x55u, 0xAAu}) {
    char name[96];
    std::snprintf(name, sizeof name, "dit forward w8a8 linears 0x%02x vs bf16, %s", mask, shape.c_str());
    g_check(name, dit.forward(mask, qw.get(), nullptr, cublas), ref, 5e-2, 0.998);
  }
  unsetenv("FF_CUDA_INT8_GEMM");
#ifdef FF_CUDA_HAVE_CUTLASS
  // The default where the kernel exists: every linear on the fused GEMM where its shape allows
  // (k % 16, n % 8 or, for the residual ones, n % 4; cuBLAS for the rest), the FFN in its FP8 form
  // where dim and ffn are multiples of 16.
  if (fc::gemmInt8DequantAvailable()) {
    setenv("FF_CUDA_FFN_FP8", "0", 1);
    const std::vector<float> fused = dit.forward(fc::kDitAllLinears, qw.get(), nullptr, cublas);
    unsetenv("FF_CUDA_FFN_FP8");
    g_check("dit forward w8a8 fused GEMM epilogues vs bf16, " + shape, fused, ref, 5e-2, 0.998);
    // The FFN's FP8 form (the default) must change the result where it applies (the e4m3 path
    // ran); elsewhere the INT8 path runs and the switch changes nothing.
    const std::vector<float> f8 = dit.forward(fc::kDitAllLinears, qw.get(), nullptr, cublas);
    const bool applies = s.dim % 16 == 0 && s.ffn % 16 == 0;
    g_check("dit forward w8a8 fused + FFN e4m3 vs bf16, " + shape, f8, ref, 5e-2, 0.998);
    const bool same = std::memcmp(f8.data(), fused.data(), f8.size() * sizeof(float)) == 0;
    const bool ok = applies ? !same : same;
    if (!ok) ++g_w8a8Failures;
    std::printf("%-58s %s\n", (std::string(applies ? "dit forward FFN e4m3 path ran, " : "dit forward FFN e4m3 not applicable, ") + shape).c_str(),
                ok ? "PASS" : "FAIL");
    // The merged q/k/v GEMM computes every output as the three separate GEMMs do (exact int32
    // products, the same epilogue): the same bits.
    setenv("FF_CUDA_QKV", "merged", 1);
    const std::vector<float> merged = dit.forward(fc::kDitAllLinears, qw.get(), nullptr, cublas);
    unsetenv("FF_CUDA_QKV");
    g_check("dit forward w8a8 q/k/v merged = separate, " + shape, merged, f8, 0.0, 0.9999999);
    // The default keeps the residual stream in bf16 where the FFN's FP8 form runs (dim and ffn
    // multiples of 16); FF_CUDA_RESIDUAL=fp32 the fp32 stream: close to it, and different where
    // the bf16 stream applies (the path ran).
    setenv("FF_CUDA_RESIDUAL", "fp32", 1);
    const std::vector<float> res32 = dit.forward(fc::kDitAllLinears, qw.get(), nullptr, cublas);
    unsetenv("FF_CUDA_RESIDUAL");
    g_check("dit forward w8a8 fused, fp32 residual vs bf16, " + shape, res32, ref, 5e-2, 0.998);
    g_check("dit forward w8a8 fused, bf16 residual vs fp32 residual, " + shape, f8, res32, 2e-2, 0.9998);
    const bool res16Ran = std::memcmp(res32.data(), f8.data(), f8.size() * sizeof(float)) != 0;
    if (res16Ran != applies) ++g_w8a8Failures;
    std::printf("%-58s %s\n", (std::string(applies ? "dit forward bf16 residual path ran, " : "dit forward bf16 residual not applicable, ") + shape).c_str(),
                res16Ran == applies ? "PASS" : "FAIL");
  }
#endif
  // The cross-attention on the Sage kernel (FF_CUDA_CROSS_ATTN=sage, with Sage self-attention)
  // against the flash one.
  const std::vector<float> sageSelf = dit.forward(0, nullptr, nullptr, cublas, fc::DitAttention::Sage);
  setenv("FF_CUDA_CROSS_ATTN", "sage", 1);
  const std::vector<float> sageCross = dit.forward(0, nullptr, nullptr, cublas, fc::DitAttention::Sage);
  unsetenv("FF_CUDA_CROSS_ATTN");
  g_check("dit forward cross-attention sage vs flash, " + shape, sageCross, sageSelf, 5e-2, 0.998);
  // ... and the switch took effect: the Sage kernel's rounding must change the result.
  const bool crossRan = std::memcmp(sageCross.data(), sageSelf.data(), sageCross.size() * sizeof(float)) != 0;
  if (!crossRan) ++g_w8a8Failures;
  std::printf("%-58s %s\n", ("dit forward cross-attention sage path ran, " + shape).c_str(), crossRan ? "PASS" : "FAIL");
  g_check("dit forward sage self-attention vs flash, " + shape, sageSelf, ref, 5e-2, 0.998);
  // The per-stage timing changes nothing in the result and times every stage kind.
  float ms[fc::kDitStages];
  std::memset(ms, 0xFF, sizeof ms);
  const std::vector<float> timed = dit.forward(fc::kDitAllLinears, qw.get(), ms, cublas);
  g_check("dit forward w8a8 with stage events = without, " + shape, timed, dit.forward(fc::kDitAllLinears, qw.get(), nullptr, cublas),
          0.0, 0.9999999);
  bool ok = true;
  float total = 0.0f;
  for (int i = 0; i < fc::kDitStages; ++i) {
    ok = ok && std::isfinite(ms[i]) && ms[i] >= 0.0f;
    total += ms[i];
  }
  ok = ok && total > 0.0f;
  if (!ok) ++g_w8a8Failures;
  std::printf("%-58s %s\n", ("dit forward stage times finite, non-negative, " + shape).c_str(), ok ? "PASS" : "FAIL");
}

}  // namespace

int w8a8Checks(W8a8Report report, W8a8Random random, cublasHandle_t cublas) {
  g_check = report;
  g_random = random;
  try {
    testQuantizeRows();
    testQuantizeRowsFp8();
    testLayerNormInt8(384, false);
    testLayerNormInt8(1536, true);
    testLayerNormInt8(320, true);
    testDequant(cublas, 333, 264, 384);
    testDequant(cublas, 130, 1000, 344);
    testDequant(cublas, 200, 512, 256);  // n % 16: the FFN's FP8 form too
    fc::DitShape small{42, 128, 2, 344, 2, 20, 12, 2, 3, 7};
    testDitForward(cublas, small);
    fc::DitShape wide{256, 256, 2, 1024, 2, 64, 16, 1, 16, 16};
    testDitForward(cublas, wide);
  } catch (const std::exception& e) {
    std::printf("w8a8 checks: error: %s  FAIL\n", e.what());
    ++g_w8a8Failures;
  }
  return g_w8a8Failures;
}
