#!/usr/bin/env bash
# Builds the CUDA test binary and the ctypes library on a machine without a GPU or a CUDA install,
# with nvcc 13.0 from PyPI, and copies them to native/build-gpu-prebuilt for the GPU machine
# (bench/gpu/run.sh with FF_GPU_PREBUILT=native/build-gpu-prebuilt and that folder carried).
# Usage: bench/gpu/build_local.sh [toolkit dir, default /tmp/ff-cuda13]; FF_CUDA_ARCHS (default 90)
# sets the CUDA architectures (90 includes the sm_90a wgmma kernels). Needs python3 -m pip,
# cmake >= 3.25, ninja and g++ >= 12. The wheel versions must match each other (a newer nvvm
# emits PTX that the 13.0 ptxas rejects).
set -euo pipefail
cd "$(dirname "$0")/../.."
TK=${1:-/tmp/ff-cuda13}
if [ ! -x "$TK/root/bin/nvcc" ]; then
  python3 -m pip install -q --no-deps --target "$TK/pkgs" nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14
  src="$TK/pkgs/nvidia/cu13"
  mkdir -p "$TK/root/lib64"
  # One toolkit-shaped tree: nvcc finds include/ and nvvm/ next to bin/.
  cp -r "$src/bin" "$src/nvvm" "$src/include" "$TK/root/"
  [ -d "$src/include/cccl" ] && cp -rn "$src/include/cccl/." "$TK/root/include/"
  cp -r "$src/lib/." "$TK/root/lib64/"
  for f in "$TK"/root/lib64/*.so.13; do ln -sf "$(basename "$f")" "${f%.13}"; done
fi
# CUTLASS's headers for the fused W8A8 GEMM (gemm_int8_sm90.cu).
if [ ! -f "$TK/cutlass/cutlass_library/source/include/cutlass/cutlass.h" ]; then
  python3 -m pip install -q --no-deps --target "$TK/cutlass" nvidia-cutlass==4.2.0.0
fi
export PATH="$TK/root/bin:$PATH" CUDACXX="$TK/root/bin/nvcc"
cmake -S native -B native/build-gpu-local -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRAMEFLEET_ADDON=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="${FF_CUDA_ARCHS:-90}" -DFF_CUBLAS_ROOT="$TK/root" \
  -DFF_CUTLASS_ROOT="$TK/cutlass/cutlass_library/source"
nice -n 10 ninja -C native/build-gpu-local -j2 framefleet_cuda_tests framefleet_cuda_capi
mkdir -p native/build-gpu-prebuilt
cp native/build-gpu-local/framefleet_cuda_tests native/build-gpu-local/libframefleet_cuda_capi.so native/build-gpu-prebuilt/
# The engine's library, which the test binary loads from its own directory.
if [ -f native/build-gpu-local/framefleet_cuda_engine.so ]; then
  cp native/build-gpu-local/framefleet_cuda_engine.so native/build-gpu-prebuilt/
fi
strip native/build-gpu-prebuilt/*
ls -la native/build-gpu-prebuilt
