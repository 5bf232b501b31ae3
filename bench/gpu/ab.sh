#!/usr/bin/env bash
# Runs bench/gpu/run.sh (tests, attention bench, focused DiT bench) and profile_sla.py for each
# prebuilt folder named, one after the other on the same card, so two builds of the CUDA sources
# are compared side by side in one call. usage: bench/gpu/ab.sh DIR... (logs under $OUT/<dir name>)
# FF_AB_BUDGET_S (default 200) bounds each run.sh.
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out/gpu}
source bench/gpu/cuda_libs.sh
for dir in "$@"; do
  o=$OUT/$(basename "$dir")
  mkdir -p "$o"
  FF_GPU_PREBUILT=$dir FF_GPU_SKIP_E2E=1 FF_GPU_BUDGET_S=${FF_AB_BUDGET_S:-200} FF_GPU_DIT_ARGS=--focus \
    OUT=$o bash bench/gpu/run.sh >/dev/null 2>&1
  python3 bench/gpu/profile_sla.py --lib "$dir/libframefleet_cuda_capi.so" >"$o/profile_sla.txt" 2>&1
  echo "== $dir"
  grep -E "exit:|FAIL|checks" "$o/log" | tail -6
  grep -E "SLA|whole call" "$o/profile_sla.txt" | head -3
done
for dir in "$@"; do
  echo "== $dir"
  log=$OUT/$(basename "$dir")/log
  awk '/^device: .* torch /{on=1} on&&/^$/{on=0} on' "$log" | grep -E "device|12, 32760|shape"
  grep -E "SLA stages|x the PyTorch baseline" "$log" | cut -c1-200
done
