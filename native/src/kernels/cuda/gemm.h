// Linear layers on the GPU through cuBLAS: y = x W^T with x [M, K] and W [N, K] row-major (the
// safetensors layout of a linear weight), y [M, N] row-major. bf16 operands accumulate in fp32;
// int8 operands (W8A8) accumulate exactly in int32 (K a multiple of 4). Device pointers only; the
// handle is bound to `stream`; failures throw std::runtime_error.
#pragma once
#include <cstdint>

struct CUstream_st;
struct cublasContext;

namespace ff::cuda {

void gemmBf16(cublasContext* h, CUstream_st* stream, int m, int n, int k, const void* x, const void* w, void* y);
void gemmInt8(cublasContext* h, CUstream_st* stream, int m, int n, int k, const int8_t* x, const int8_t* w, int32_t* y);

// The kernel is built with CUTLASS only (FF_CUDA_HAVE_CUTLASS; gemm_int8_sm90.cu); elsewhere
// gemmInt8DequantAvailable() is false and gemmInt8Dequant throws std::logic_error. The W8A8 product with its
// dequantization fused: y (bf16 [m, n], row stride ldy) = act(xScale[m] * wScale[n] * (x . w^T) +
// bias[n]), act = gelu (tanh) or identity, bias may be null; k a multiple of 16, n and ldy of 8
// (else std::invalid_argument), every pointer 16-byte aligned. Available on compute capability 9.x devices.
bool gemmInt8DequantAvailable();
// TMA and the epilogue's 16-byte vector loads: every pointer 16-byte aligned (a null bias or gate passes).
bool gemmInt8DequantAligned(const void* x, const void* w, const void* xScale, const void* wScale, const void* bias,
                            const void* y, const void* gate = nullptr);
void gemmInt8Dequant(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
                     const float* bias, bool gelu, void* y, int64_t ldy, CUstream_st* stream);
// The same product added to a residual stream in place: residual ([m, n], row stride ld; fp32, or
// bf16 where bf16Residual) += gate[n] * (xScale[m] * wScale[n] * (x . w^T) + bias[n]), in fp32
// throughout, the sum rounded once to bf16 where bf16Residual (gate null: 1, bias null: 0); k a
// multiple of 16, n and ld of 4 (of 8 for bf16), every pointer 16-byte aligned.
void gemmInt8DequantResidual(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale,
                             const float* wScale, const float* bias, const float* gate, void* residual, int64_t ld,
                             bool bf16Residual, CUstream_st* stream);
// The FFN's FP8 form. gemmInt8DequantFp8: y (e4m3 [m, n], row stride ldy) = gelu(xScale[m] *
// wScale[n] * (x . w^T) + bias[n]), saturated to +-448 (no output scale: GELU's outputs of a
// normed input sit well inside e4m3's range); n and ldy multiples of 16.
// gemmFp8DequantResidual: residual += gate[n] * (xScale * wScale[n] * (x . w^T) + bias[n]) with x
// and w e4m3 (one scale for all of x), accumulated in the tensor cores' accumulator
// (FF_CUDA_FP8_ACCUM=promoted: promoted to fp32 every few k-blocks); k a multiple of 16, n and ld of 4
// (of 8 for a bf16 residual).
void gemmInt8DequantFp8(int m, int n, int k, const int8_t* x, const int8_t* w, const float* xScale, const float* wScale,
                        const float* bias, void* y, int64_t ldy, CUstream_st* stream);
void gemmFp8DequantResidual(int m, int n, int k, const void* x, const void* w, float xScale, const float* wScale,
                            const float* bias, const float* gate, void* residual, int64_t ld, bool bf16Residual,
                            CUstream_st* stream);

}  // namespace ff::cuda
