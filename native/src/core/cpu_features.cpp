#include "core/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ff {

namespace {

constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  bool avx = c & (1u << 28);
  uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  f.os_avx = avx && (xcr0 & 0x6) == 0x6;
  f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;
  bool os_amx = (xcr0 & (3u << 17)) == (3u << 17);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.os_avx && (b & (1u << 5));
    f.avx512f = f.os_avx512 && (b & (1u << 16));
    f.avx512dq = f.os_avx512 && (b & (1u << 17));
    f.avx512cd = f.os_avx512 && (b & (1u << 28));
    f.avx512bw = f.os_avx512 && (b & (1u << 30));
    f.avx512vl = f.os_avx512 && (b & (1u << 31));
    f.avx512_vnni = f.os_avx512 && (c & (1u << 11));
    f.avx512_fp16 = f.os_avx512 && (d & (1u << 23));
    f.amx_bf16 = os_amx && (d & (1u << 22));
    f.amx_tile = os_amx && (d & (1u << 24));
    f.amx_int8 = os_amx && (d & (1u << 25));
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avx_vnni = f.os_avx && (a & (1u << 4));
    f.avx512_bf16 = f.os_avx512 && (a & (1u << 5));
  }
  f.fma = f.fma && f.os_avx;
  f.f16c = f.f16c && f.os_avx;
  if (f.amx_tile) f.amx_permitted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  unsigned brand[12];
  if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    char text[49];
    std::memcpy(text, brand, 48);
    text[48] = 0;
    f.brand = text;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
  return f;
}

int max_variant_allowed() {
  const char* cap = std::getenv("FRAMEFLEET_CPU_MAX_VARIANT");
  if (!cap) return kVariantCount - 1;
  for (int v = 0; v < kVariantCount; ++v)
    if (std::strcmp(cap, variant_name(static_cast<Variant>(v))) == 0) return v;
  return kVariantCount - 1;
}

}  // namespace

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::Scalar: return "scalar";
    case Variant::Avx2: return "avx2";
    case Variant::Avx512: return "avx512";
    case Variant::Vnni: return "vnni";
    case Variant::Amx: return "amx";
  }
  return "scalar";
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

int variant_score(Variant v) {
  const CpuFeatures& f = cpu_features();
  if (static_cast<int>(v) > max_variant_allowed()) return 0;
  bool avx2 = f.avx2 && f.fma && f.f16c;
  bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512cd;
  bool vnni = avx512 && f.avx512_vnni && f.avx512_bf16;
  switch (v) {
    case Variant::Scalar: return 1;
    case Variant::Avx2: return avx2 ? 2 : 0;
    case Variant::Avx512: return avx512 ? 3 : 0;
    case Variant::Vnni: return vnni ? 4 : 0;
    case Variant::Amx: return vnni && f.amx_tile && f.amx_int8 && f.amx_bf16 && f.amx_permitted ? 5 : 0;
  }
  return 0;
}

Variant best_variant(const std::vector<Variant>& available) {
  Variant best = Variant::Scalar;
  int best_score = 0;
  for (Variant v : available) {
    int s = variant_score(v);
    if (s > best_score) {
      best = v;
      best_score = s;
    }
  }
  return best;
}

std::vector<std::string> cpu_feature_names() {
  const CpuFeatures& f = cpu_features();
  std::vector<std::string> out;
  auto add = [&](bool on, const char* name) {
    if (on) out.emplace_back(name);
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx512_fp16, "avx512_fp16");
  add(f.avx_vnni, "avx_vnni");
  add(f.amx_tile, "amx_tile");
  add(f.amx_int8, "amx_int8");
  add(f.amx_bf16, "amx_bf16");
  add(f.amx_permitted, "amx_permitted");
  return out;
}

}  // namespace ff
