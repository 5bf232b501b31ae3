#pragma once
// INT8 building blocks shared by the W8A8 linear layer and the Sage/SLA attention kernels:
// the run-time choice of INT8 code path, symmetric per-row quantization and the tile layout
// that both AMX and AVX-512 VNNI read.
#include <cstdint>
#include <functional>

#include "core/cpu_features.h"

namespace ff::cpu {

// The INT8 kernels come in Variant::Scalar, Avx2, Vnni (AVX-512 VNNI) and Amx builds; a CPU with
// AVX-512 but no VNNI runs the Avx2 build. FRAMEFLEET_CPU_MAX_VARIANT caps the choice.
Variant bestInt8Variant();
// 0 when the environment variable `name` is "fp32" (a switch that turns an fp16 path off), else 1:
// the initial value of such a switch.
int fp16SwitchFromEnv(const char* name);
bool int8VariantRuns(Variant v);
// Throws Error(Internal) naming `what` unless v runs here; also makes sure detection (and with it
// the AMX permission request) happened before any tile instruction.
void requireInt8Variant(Variant v, const char* what);

// Runs fn(begin, end) over [0, n) split into contiguous chunks across the global thread pool.
void parallelChunks(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

// Symmetric per-row quantization, round to nearest even:
// x: [rows, cols] (row stride ldx) -> q: [rows, ldq] int8 in [-127, 127], columns past cols
// zero-filled; scale: [rows] with x ~= q * scale. An all-zero row gets scale 0.
void quantizeRows(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                  float* scale);
void quantizeRowsScalar(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q,
                        int64_t ldq, float* scale);

// One scale for a whole block: x: [rows, cols] (stride ldx) minus shift[cols] when given ->
// q: [rows, ldq] (columns past cols untouched), scale absmax / 127 returned; round to nearest
// even. The Sage/SLA per-block quantization of q and k; quantizeBlockScalar is the oracle.
float quantizeBlockScalar(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                          int64_t ldq);
float quantizeBlockAvx512(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                          int64_t ldq);
float quantizeBlockAvx2(const float* x, int64_t ldx, int64_t rows, int64_t cols, const float* shift, int8_t* q,
                        int64_t ldq);

// One row's quantization given its absolute maximum; shared by the scalar and vector paths so
// that both round identically.
inline float int8ScaleForAbsMax(float absMax) { return absMax / 127.0f; }
inline float int8InverseScaleForAbsMax(float absMax) { return absMax > 0 ? 127.0f / absMax : 0.0f; }

// Tile layout of an int8 matrix B used as the right operand of A[M, K] . B[K, N] (B given as
// rows of N vectors of length K, i.e. a linear weight [out, in] or keys [tokens, hd]):
// panels of 16 columns by 64 K-values, each 16 rows of (16 columns x 4 consecutive K values):
//   packed[((nb * kBlocks + kb) * 16 + k4) * 64 + n * 4 + kk] = b[nb*16 + n][kb*64 + k4*4 + kk]
// This is AMX's B-tile format and what vpdpbusd wants for 16 int32 accumulators.
constexpr int64_t kInt8PanelCols = 16;
constexpr int64_t kInt8PanelDepth = 64;
inline int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
// rows: [n, ldb] int8 (only the first k columns are read) -> packed: [roundUp(n,16) * roundUp(k,64)]
void packInt8Panels(const int8_t* rows, int64_t n, int64_t k, int64_t ldb, int8_t* packed);

}  // namespace ff::cpu
