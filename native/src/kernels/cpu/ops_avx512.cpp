// ops.h's row kernels (ops_impl.h) and activations (vmath.h) compiled for AVX-512: the same code
// as the baseline build, vectorised 16 lanes wide here. ops.cpp calls these when the CPU has
// AVX-512.
#include <cstdint>

#include "kernels/cpu/ops_impl.h"

namespace ff {

FF_OPS_ENTRY_POINTS(avx512)

}  // namespace ff
