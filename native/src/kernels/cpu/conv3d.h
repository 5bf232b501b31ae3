// 3D convolution, stride 1, for the causal VAE decoder: the time axis is padded with kt - 1 zero
// frames in front only, space with kh/2, kw/2 zeros on each side, so the output has the input's
// T x H x W. x: [Ci, T, H, W], w: [Co, Ci, kt, kh, kw], bias: [Co] or null -> y: [Co, T, H, W].
#pragma once
#include <cstdint>

namespace ff {

struct Conv3dShape {
  int64_t in_channels, out_channels, frames, height, width, kt, kh, kw;
};

// Dispatches: the direct kernel of the widest instruction set the CPU has (AVX-512, else AVX2),
// else conv3d_im2col.
void conv3d(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y);
// im2col of one output frame into [H*W, Ci*kt*kh*kw] then one GEMM per frame (any CPU).
void conv3d_im2col(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y);
// Direct convolution vectorised over the output width (conv3d_direct_impl.h), one build per
// instruction set: conv3d_avx512.cpp needs AVX-512, conv3d_avx2.cpp AVX2 + FMA.
void conv3d_direct_avx512(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv3d_direct_avx2(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y);
// Whether conv3d takes a direct kernel on this CPU (conv3d_direct_avx512 or conv3d_direct_avx2).
bool conv3d_direct_available();
// Direct loops in double: the oracle.
void conv3d_ref(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y);

}  // namespace ff
