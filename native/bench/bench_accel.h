// Bench rows of the acceleration stack (W8A8 GEMM against fp32 GEMM; Sage and SLA attention
// against dense fp32 attention), each timed in the same run as its fp32 peer after validation.
#pragma once
#include <string>
#include <vector>

namespace ffbench {

struct AccelRow {
  std::string op;       // "gemm" | "attention"
  std::string shape;    // e.g. "M=4096 N=1536 K=384", "N=4096 heads=2 hd=64 topK=0.1"
  std::string variant;  // dense | sage | sla | fp32 | w8a8
  std::string path;     // the CPU code path that ran: scalar | avx2 | avx512 | vnni | amx
  double seconds = 0;   // median wall time of one call
  double gflops_or_gops = 0;  // dense-equivalent operations per second / 1e9
  double speedup = 1;   // the fp32 peer's seconds over this row's
  double rel_l2 = 0, cosine = 1;  // against the fp32 peer's output
};

// quick: only the smallest shapes (seconds instead of a minute).
std::vector<AccelRow> accel_rows(bool quick);
// One whole DiT forward of the bench model (dim 384, 12 layers, 6 heads, written to a temporary
// directory) per knob combination, attention {dense, sage, sla topK 0.1} x linear {fp32, w8a8},
// at 576 and (unless quick) 4096 tokens; variant "<attention>+<linear>", speedup and error
// against dense+fp32. Needs the tools library (random models).
std::vector<AccelRow> accel_forward_rows(bool quick);
// {"op":..,"shape":..,"variant":..,"path":..,"seconds":..,"gflops_or_gops":..,"speedup":..,
//  "error":{"relL2":..,"cosine":..}}
std::string accel_row_json(const AccelRow& row);

}  // namespace ffbench
