// ops.h's row kernels (ops_impl.h) and activations (vmath.h) compiled for AVX2 + FMA: the same code
// as the baseline build, vectorised 8 lanes wide. ops.cpp calls these on CPUs with AVX2 but not
// AVX-512.
#include <cstdint>

#include "kernels/cpu/ops_impl.h"

namespace ff {

void gelu_span_avx2(float* x, int64_t n) { ops_detail::gelu_span(x, n); }

FF_OPS_ENTRY_POINTS(avx2)

}  // namespace ff
