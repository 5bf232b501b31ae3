#include "kernels/cpu/attention_dense_impl.h"

namespace ff {

void attention_dense_avx512(const AttentionArgs& a) { attention_dense_impl(a); }

}  // namespace ff
