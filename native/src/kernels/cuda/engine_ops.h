// The engine's own small kernels around ditForward (docs/CUDA.md "The engine on the GPU"):
// patchify / unpatchify between the latents and the token rows, the fp32 patch embedding, and
// TeaCache's signal and residual on the device. Device pointers; every call queues work on
// `stream` and checks the launch.
#pragma once
#include <cstdint>

struct CUstream_st;
struct cublasContext;

namespace ff::cuda {

// The latent grid of a step: x [c, t, h, w] cut into patches [pt, ph, pw]; tokens ordered
// (frame, row, col), a patch's values ordered (channel, pt, ph, pw), as the CPU engine.
struct PatchGrid {
  int channels, frames, height, width;
  int pt, ph, pw;
  int gridT() const { return frames / pt; }
  int gridH() const { return height / ph; }
  int gridW() const { return width / pw; }
  int tokens() const { return gridT() * gridH() * gridW(); }
  int patchNumel() const { return channels * pt * ph * pw; }
};

// patches (fp32): [tokens, patchNumel] <- x (fp32): [c, t, h, w].
void patchify(const PatchGrid& g, const float* x, float* patches, CUstream_st* stream);
// v (fp32): [c, t, h, w] <- rows (bf16): [tokens, patchNumel] (the head's output).
void unpatchify(const PatchGrid& g, const void* rows, float* v, CUstream_st* stream);
// y (fp32): [m, n] = x [m, k] . w [n, k]^T + bias, all fp32 (no TF32), through cuBLAS.
void gemmF32Bias(cublasContext* h, CUstream_st* stream, int m, int n, int k, const float* x, const float* w,
                 const float* bias, float* y);
// sums[0] += sum |a - b|, sums[1] += sum |b| over n bf16 values (sums: two doubles, zeroed by
// the caller).
void absDiffSums(const void* a, const void* b, int64_t n, double* sums, CUstream_st* stream);
// residual = after - before (fp32, n values).
void subtract(const float* after, const float* before, float* residual, int64_t n, CUstream_st* stream);
// x += y (fp32, n values).
void addInPlace(float* x, const float* y, int64_t n, CUstream_st* stream);

}  // namespace ff::cuda
