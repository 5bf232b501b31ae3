// CPU feature detection (cpuid + xgetbv, so a feature the OS does not enable reads as absent)
// and the score of each kernel variant. A variant that cannot run scores zero; dispatch picks the
// highest-scoring variant a kernel provides. AMX additionally needs the Linux permission for the
// tile state (arch_prctl ARCH_REQ_XCOMP_PERM), requested once at detection.
#pragma once
#include <string>
#include <vector>

namespace ff {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512cd = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx512_fp16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool os_avx = false, os_avx512 = false, amx_permitted = false;
  std::string brand;
};

// The instruction-set levels kernels are compiled for (file suffixes _avx2, _avx512, _vnni, _amx).
enum class Variant { Scalar = 0, Avx2 = 1, Avx512 = 2, Vnni = 3, Amx = 4 };
constexpr int kVariantCount = 5;

const char* variant_name(Variant v);
const CpuFeatures& cpu_features();
// 0 when the variant cannot run here (or is above FRAMEFLEET_CPU_MAX_VARIANT, a cap for tests and
// benches: scalar|avx2|avx512|vnni|amx); otherwise higher is preferred.
int variant_score(Variant v);
// Highest-scoring variant among `available`.
Variant best_variant(const std::vector<Variant>& available);
// Names of the detected features, for capabilities() and bench output.
std::vector<std::string> cpu_feature_names();

}  // namespace ff
