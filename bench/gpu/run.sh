#!/usr/bin/env bash
# The one script the GPU machine runs (docs/CUDA.md): configure native/ with its optional CUDA part
# (no Node addon), build the CUDA test binary and the ctypes library, run the tests, time the
# attention kernels against PyTorch SDPA, then the DiT forward against train/model.py. Logs and
# JSON go under $OUT (default out/gpu); the tables are printed last. FF_GPU_BUDGET_S (default 420)
# bounds the whole script: each stage gets at most what is left; FF_GPU_BIG=1 adds the
# [1, 40, 75600, 128] attention shape at the end; FF_GPU_PREBUILT=dir uses binaries built elsewhere
# (sm_90, same CUDA major) instead of building; FF_GPU_SKIP_DIT=1 leaves out the DiT bench;
# FF_GPU_DIT_ARGS passes arguments to bench_dit.py (--focus); FF_GPU_CHECK_BIG=1 checks SLA's block map and sampled outputs at [1, 40, 75600, 128].
# The tests include the engine's CUDA path against its CPU path on models/tiny-shapes
# (tests/cuda/test_engine.cpp, through framefleet_cuda_engine.so beside the test binary); when
# native/build-gpu-node holds a packed Node (bench/gpu/engine_pack.sh), `framefleet generate`
# then runs end to end on the GPU and the CPU (bench/gpu/engine_e2e.sh; FF_GPU_SKIP_E2E=1 skips).
# That folder also serves as FF_GPU_PREBUILT.
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out/gpu}
mkdir -p "$OUT"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
BUILD=native/build-gpu
START=$(date +%s)
BUDGET=${FF_GPU_BUDGET_S:-420}
left() { local l=$((BUDGET - ($(date +%s) - START))); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -1
  source bench/gpu/cuda_libs.sh
  # A build carried from elsewhere (FF_GPU_PREBUILT=dir) is used when it loads; otherwise build here.
  # engine_pack.sh's pack carries its CUDA binaries as .xz.
  for f in "${FF_GPU_PREBUILT:-/nonexistent}"/*.xz; do
    case "$f" in */node.xz | */node_modules.tar.xz | */\*.xz) ;; *) [ -f "${f%.xz}" ] || bash bench/gpu/unxz.sh "$f" "${f%.xz}" ;; esac
  done
  if [ -n "${FF_GPU_PREBUILT:-}" ] && ldd "$FF_GPU_PREBUILT/framefleet_cuda_tests" \
    $(ls "$FF_GPU_PREBUILT/framefleet_cuda_engine.so" 2>/dev/null) | grep -q "not found"; then
    echo "prebuilt binaries do not load here; building"; FF_GPU_PREBUILT=
  fi
  if [ -n "${FF_GPU_PREBUILT:-}" ]; then
    BUILD=$FF_GPU_PREBUILT
    echo "using the prebuilt binaries in $BUILD"
    [ -f "$BUILD/framefleet_cuda_engine.so" ] ||
      echo "no framefleet_cuda_engine.so in $BUILD (bench/gpu/engine_pack.sh packs one): the engine checks are skipped"
  else
    cublas_h=$(find /usr/local /usr/include -name cublas_v2.h 2>/dev/null | head -1)
    [ -z "$cublas_h" ] && cublas_h=$(find /opt -name cublas_v2.h 2>/dev/null | head -1)
    echo "cublas_v2.h: ${cublas_h:-not found}"
    extra=()
    [ -n "$cublas_h" ] && extra+=("-DFF_CUBLAS_ROOT=$(dirname "$(dirname "$cublas_h")")")
    cmake -S native -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRAMEFLEET_ADDON=OFF \
      -DCMAKE_CUDA_ARCHITECTURES="${FF_CUDA_ARCHS:-90}" "${extra[@]}" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
    ninja -C "$BUILD" framefleet_cuda_tests framefleet_cuda_capi >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  fi
  echo "build: $(( $(date +%s) - START )) s"
  FRAMEFLEET_MODELS_DIR=$PWD/models timeout "$(left 150)" "$BUILD/framefleet_cuda_tests" | tee "$OUT/tests.log"
  echo "tests exit: $?  at $(( $(date +%s) - START )) s"
  lib="$BUILD/libframefleet_cuda_capi.so"
  timeout "$(left 150)" python3 bench/gpu/bench_attention.py --lib "$lib" --out "$OUT/attention.json"
  echo "attention bench exit: $?  at $(( $(date +%s) - START )) s"
  if [ "${FF_GPU_SKIP_DIT:-0}" != 1 ]; then
    timeout "$(left 150)" python3 bench/gpu/bench_dit.py --lib "$lib" --out "$OUT/dit.json" ${FF_GPU_DIT_ARGS:-}
    echo "dit bench exit: $?  at $(( $(date +%s) - START )) s"
  fi
  if [ "${FF_GPU_SKIP_E2E:-0}" != 1 ]; then
    OUT="$OUT" timeout "$(left 200)" bash bench/gpu/engine_e2e.sh
    echo "engine e2e exit: $?  at $(( $(date +%s) - START )) s"
  fi
  if [ "${FF_GPU_CHECK_BIG:-0}" = 1 ]; then
    timeout "$(left 90)" python3 bench/gpu/bench_attention.py --lib "$lib" --out "$OUT/sla_check_big.json" --check-big
  fi
  if [ "${FF_GPU_BIG:-0}" = 1 ] && [ "$(left 100)" -ge 60 ]; then
    timeout "$(left 120)" python3 bench/gpu/bench_attention.py --lib "$lib" --out "$OUT/attention_big.json" --big-only
  fi
} 2>&1 | tee "$OUT/log"
