// The dense kernel (attention_dense_impl.h) compiled for AVX2 + FMA, 8 lanes wide.
#include "kernels/cpu/attention_dense_impl.h"

namespace ff {

void attention_dense_avx2(const AttentionArgs& a) { attention_dense_impl(a); }

}  // namespace ff
