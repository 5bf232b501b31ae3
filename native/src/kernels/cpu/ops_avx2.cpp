// ops.h's row kernels (ops_impl.h) and activations (vmath.h) compiled for AVX2 + FMA: the same code
// as the baseline build, vectorised 8 lanes wide. ops.cpp calls these on CPUs with AVX2 but not
// AVX-512.
#include <cstdint>

#include "kernels/cpu/ops_impl.h"

namespace ff {

FF_OPS_ENTRY_POINTS(avx2)

}  // namespace ff
