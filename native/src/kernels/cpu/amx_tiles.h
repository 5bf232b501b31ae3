#pragma once
// AMX tile configuration shared by the INT8 GEMM and Sage attention kernels. Include only from
// *_amx.cpp files (compiled with -mamx-tile); the OS permission is requested by
// core/cpu_features at detection.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ff::cpu {

// Palette 1, all eight tiles 16 rows x 64 bytes. Loaded once per worker chunk: the
// configuration is per thread and survives until _tile_release.
inline void configureAmxTiles16x64() {
  alignas(64) uint8_t cfg[64];
  std::memset(cfg, 0, sizeof cfg);
  cfg[0] = 1;
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = 64;  // colsb, little-endian uint16
    cfg[48 + t] = 16;      // rows
  }
  _tile_loadconfig(cfg);
}

}  // namespace ff::cpu
