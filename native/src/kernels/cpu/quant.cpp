#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/threadpool.h"

namespace ff::cpu {

void quantizeRowsAvx512(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q,
                        int64_t ldq, float* scale);
void quantizeRowsAvx2(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                      float* scale);

bool int8VariantRuns(Variant v) {
  return v != Variant::Avx512 && variant_score(v) > 0;
}

void requireInt8Variant(Variant v, const char* what) {
  if (!int8VariantRuns(v)) {
    fail(ErrorCode::Internal, std::string(what) + ": the " + variant_name(v) +
                                  " build cannot run on this CPU");
  }
}

Variant bestInt8Variant() {
  return best_variant({Variant::Scalar, Variant::Avx2, Variant::Vnni, Variant::Amx});
}

int fp16SwitchFromEnv(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "fp32") == 0 ? 0 : 1;
}

void parallelChunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  ThreadPool::global().parallel_for(n, fn);
}

void quantizeRowsScalar(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q,
                        int64_t ldq, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    int8_t* qr = q + r * ldq;
    float absMax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) absMax = std::max(absMax, std::fabs(xr[c]));
    const float inv = int8InverseScaleForAbsMax(absMax);
    for (int64_t c = 0; c < cols; ++c) {
      qr[c] = static_cast<int8_t>(std::nearbyint(xr[c] * inv));
    }
    std::memset(qr + cols, 0, static_cast<size_t>(ldq - cols));
    scale[r] = int8ScaleForAbsMax(absMax);
  }
}

void quantizeRows(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                  float* scale) {
  if (variant_score(Variant::Avx512) > 0) {
    quantizeRowsAvx512(x, rows, cols, ldx, q, ldq, scale);
  } else if (variant_score(Variant::Avx2) > 0) {
    quantizeRowsAvx2(x, rows, cols, ldx, q, ldq, scale);
  } else {
    quantizeRowsScalar(x, rows, cols, ldx, q, ldq, scale);
  }
}

void packInt8Panels(const int8_t* rows, int64_t n, int64_t k, int64_t ldb, int8_t* packed) {
  const int64_t nPanels = roundUp(n, kInt8PanelCols) / kInt8PanelCols;
  const int64_t kBlocks = roundUp(k, kInt8PanelDepth) / kInt8PanelDepth;
  for (int64_t nb = 0; nb < nPanels; ++nb) {
    for (int64_t kb = 0; kb < kBlocks; ++kb) {
      int8_t* tile = packed + (nb * kBlocks + kb) * kInt8PanelCols * kInt8PanelDepth;
      if ((nb + 1) * 16 <= n && (kb + 1) * 64 <= k) {  // a whole tile inside: 4-byte groups
        for (int64_t k4 = 0; k4 < 16; ++k4)
          for (int64_t j = 0; j < 16; ++j) std::memcpy(tile + k4 * 64 + j * 4, rows + (nb * 16 + j) * ldb + kb * 64 + k4 * 4, 4);
        continue;
      }
      for (int64_t k4 = 0; k4 < 16; ++k4) {
        for (int64_t j = 0; j < 16; ++j) {
          for (int64_t kk = 0; kk < 4; ++kk) {
            const int64_t row = nb * 16 + j, col = kb * 64 + k4 * 4 + kk;
            tile[k4 * 64 + j * 4 + kk] = (row < n && col < k) ? rows[row * ldb + col] : 0;
          }
        }
      }
    }
  }
}

}  // namespace ff::cpu
