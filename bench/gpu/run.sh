#!/usr/bin/env bash
# The one script the GPU machine runs (docs/CUDA.md): configure native/ with its optional CUDA part
# (no Node addon), build the CUDA test binary and the ctypes library, run the tests, then time the
# attention kernels against PyTorch SDPA. Logs and JSON go under $OUT (default out/gpu); the table
# is printed last. Extra arguments go to bench_attention.py (e.g. --big).
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out/gpu}
mkdir -p "$OUT"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
BUILD=native/build-gpu
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -2
  cublas_h=$(find /usr/local /usr/include /opt -name cublas_v2.h 2>/dev/null | head -1)
  echo "cublas_v2.h: ${cublas_h:-not found}"
  extra=()
  [ -n "$cublas_h" ] && extra+=("-DFF_CUBLAS_ROOT=$(dirname "$(dirname "$cublas_h")")")
  t0=$(date +%s)
  cmake -S native -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRAMEFLEET_ADDON=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${FF_CUDA_ARCHS:-90}" "${extra[@]}" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  ninja -C "$BUILD" framefleet_cuda_tests framefleet_cuda_capi >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
  timeout 180 "$BUILD/framefleet_cuda_tests"; tests=$?
  echo "tests exit: $tests"
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/gpu/bench_attention.py --lib "$BUILD/libframefleet_cuda_capi.so" --out "$OUT/attention.json" "$@"
} 2>&1 | tee "$OUT/log"
