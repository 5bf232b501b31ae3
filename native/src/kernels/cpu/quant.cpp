#include "quant.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace ff::cpu {

void quantizeRowsAvx512(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q,
                        int64_t ldq, float* scale);

namespace {

uint64_t readXcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux refuses AMX tile data until the process asks for it (arch_prctl ARCH_REQ_XCOMP_PERM).
bool requestAmxPermission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
}

struct Int8Features {
  bool avx2 = false, avx512 = false, vnni = false, amx = false;
};

Int8Features detect() {
  Int8Features f;
  uint32_t a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  if (!osxsave) return f;
  const uint64_t xcr0 = readXcr0();
  const bool ymmState = (xcr0 & 0x6) == 0x6;
  const bool zmmState = ymmState && (xcr0 & 0xe0) == 0xe0;
  const bool tileState = (xcr0 & 0x60000) == 0x60000;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymmState && fma && ((b >> 5) & 1);
  const bool avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  const bool avx512dq = (b >> 17) & 1;
  f.avx512 = f.avx2 && zmmState && avx512f && avx512bw && avx512vl && avx512dq;
  f.vnni = f.avx512 && ((c >> 11) & 1);
  const bool amxTile = (d >> 24) & 1, amxInt8 = (d >> 25) & 1, amxBf16 = (d >> 22) & 1;
  uint32_t a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  const bool avx512bf16 = (a1 >> 5) & 1;
  f.amx = f.vnni && avx512bf16 && amxTile && amxInt8 && amxBf16 && tileState &&
          requestAmxPermission();
  return f;
}

const Int8Features& features() {
  static const Int8Features f = detect();
  return f;
}

Int8Path capFromEnv() {
  const char* v = std::getenv("FRAMEFLEET_INT8_PATH");
  if (v == nullptr) return Int8Path::Amx;
  const std::string s(v);
  if (s == "scalar") return Int8Path::Scalar;
  if (s == "avx2") return Int8Path::Avx2;
  if (s == "vnni") return Int8Path::Avx512Vnni;
  return Int8Path::Amx;
}

}  // namespace

const char* int8PathName(Int8Path path) {
  switch (path) {
    case Int8Path::Scalar:
      return "scalar";
    case Int8Path::Avx2:
      return "avx2";
    case Int8Path::Avx512Vnni:
      return "avx512-vnni";
    case Int8Path::Amx:
      return "amx";
  }
  return "unknown";
}

bool int8PathAvailable(Int8Path path) {
  const Int8Features& f = features();
  switch (path) {
    case Int8Path::Scalar:
      return true;
    case Int8Path::Avx2:
      return f.avx2;
    case Int8Path::Avx512Vnni:
      return f.vnni;
    case Int8Path::Amx:
      return f.amx;
  }
  return false;
}

Int8Path bestInt8Path() {
  static const Int8Path best = [] {
    Int8Path p = capFromEnv();
    while (p != Int8Path::Scalar && !int8PathAvailable(p)) {
      p = static_cast<Int8Path>(static_cast<int>(p) - 1);
    }
    return p;
  }();
  return best;
}

void parallelChunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t workers =
      std::min<int64_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  if (workers == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers - 1));
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t begin = w * chunk, end = std::min(n, begin + chunk);
    if (begin < end) threads.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(0, std::min(n, chunk));
  for (auto& t : threads) t.join();
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
  if (int8PathAvailable(Int8Path::Avx512Vnni)) {
    quantizeRowsAvx512(x, rows, cols, ldx, q, ldq, scale);
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
