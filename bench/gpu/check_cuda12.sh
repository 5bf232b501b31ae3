#!/usr/bin/env bash
# Checks that the CUDA sources build against CUDA 12.9, the toolkit of docker/worker-cuda.Dockerfile
# (nvidia/cuda:12.9.1), on a machine with neither a GPU nor that toolkit. PyPI's CUDA 12 wheels
# carry the runtime, cuBLAS and CCCL headers and libraries and ptxas 12.9, but no nvcc driver or
# front end, so the check has two halves:
#   1. host side: nvcc 13.0 (from bench/gpu/build_local.sh's toolkit) compiles and links every
#      CUDA target against CUDA 12.9's runtime, cuBLAS and CCCL headers and the .so.12 libraries
#      (the compiler's own crt/ and fatbinary_section.h stay 13.0's: they belong to its driver);
#   2. device side: the PTX of every CUDA file, for every architecture the image builds (sm_90,
#      sm_90a, sm_120), is assembled by ptxas 12.9 (the PTX header retagged to ISA 8.8, 12.9's).
# What it cannot check: 12.9's own front end (cicc) on our sources.
# Usage: bench/gpu/check_cuda12.sh [13.0 toolkit dir, default /tmp/ff-cuda13] [12.9 dir, default
# /tmp/ff-cuda129]; FRAMEFLEET_CUDA_ARCHS (default "90;120", the image's) picks the architectures.
set -euo pipefail
cd "$(dirname "$0")/../.."
TK13=${1:-/tmp/ff-cuda13}
TK12=${2:-/tmp/ff-cuda129}
ARCHS=${FRAMEFLEET_CUDA_ARCHS:-90;120}
BUILD=${FF_CHECK_BUILD_DIR:-native/build-cuda12-check}
if [ ! -x "$TK13/root/bin/nvcc" ]; then
  echo "check_cuda12: no nvcc in $TK13/root/bin; run bench/gpu/build_local.sh $TK13 first" >&2
  exit 1
fi
if [ ! -d "$TK12/pkgs/nvidia/cublas" ]; then
  # The versions of the nvidia/cuda:12.9.1 images.
  python3 -m pip install -q --no-deps --target "$TK12/pkgs" nvidia-cuda-nvcc-cu12==12.9.86 \
    nvidia-cuda-runtime-cu12==12.9.79 nvidia-cuda-cccl-cu12==12.9.27 nvidia-cublas-cu12==12.9.1.4
fi
src="$TK12/pkgs/nvidia"
root="$TK12/root"
rm -rf "$root"
mkdir -p "$root/include" "$root/lib64"
cp -r "$TK13/root/bin" "$TK13/root/nvvm" "$root/"
cp -r "$src/cuda_runtime/include/." "$src/cublas/include/." "$src/cuda_cccl/include/." "$root/include/"
rm -f "$root/include/__init__.py"
cp -r "$TK13/root/include/crt" "$TK13/root/include/fatbinary_section.h" "$root/include/"
cp -r "$src/cuda_runtime/lib/." "$src/cublas/lib/." "$root/lib64/"
for f in "$root"/lib64/*.so.12; do ln -sf "$(basename "$f")" "${f%.12}"; done
grep -q 'define CUDART_VERSION  *12090' "$root/include/cuda_runtime_api.h"

export PATH="$root/bin:$PATH" CUDACXX="$root/bin/nvcc"
cmake -S native -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="${NODE_INCLUDE_DIR:-/usr/include/node}" \
  -DNODE_ADDON_API_DIR="$(node -p 'require("path").resolve(require("node-addon-api").include_dir.replace(/"/g, ""))')" \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DFF_CUBLAS_ROOT="$root" >/dev/null
nice -n 10 ninja -C "$BUILD" -j"${CMAKE_BUILD_PARALLEL_LEVEL:-2}" framefleet_native framefleet_cuda_engine framefleet_cuda_tests
for bin in framefleet_cuda_engine.so framefleet_cuda_tests; do
  needed=$(objdump -p "$BUILD/$bin" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
  case "$needed" in
    *libcublas.so.12*libcudart.so.12*) echo "host: $bin links $needed" ;;
    *) echo "check_cuda12: $bin links $needed, not CUDA 12's libraries" >&2; exit 1 ;;
  esac
done

ptxas12="$src/cuda_nvcc/bin/ptxas"
ptxdir="$BUILD/ptx12"
mkdir -p "$ptxdir"
fails=0
count=0
while read -r cmd; do
  file=$(sed -n 's/.* -c \([^ ]*\.cu\) .*/\1/p' <<<"$cmd")
  # The command without its outputs, dependency files and architectures.
  base_cmd=$(sed -e 's/ -MD -MT [^ ]* -MF [^ ]*//' -e 's/ -c .*//' -e 's/--generate-code=[^ ]*//g' \
    -e 's/-gencode=[^ ]*//g' <<<"$cmd")
  for arch in $(grep -o 'compute_[0-9]*a\?' <<<"$cmd" | sort -u); do
    name="$(basename "$file" .cu).${arch#compute_}"
    # shellcheck disable=SC2086
    (cd "$BUILD" && $base_cmd -arch="$arch" -ptx "$file" -o "ptx12/$name.ptx")
    sed -i 's/^\.version [0-9.]*/.version 8.8/' "$ptxdir/$name.ptx"
    count=$((count + 1))
    if ! "$ptxas12" -arch="sm_${arch#compute_}" -O3 "$ptxdir/$name.ptx" -o "$ptxdir/$name.cubin"; then
      echo "device: ptxas 12.9 rejects $file for sm_${arch#compute_}" >&2
      fails=$((fails + 1))
    fi
  done
done < <(ninja -C "$BUILD" -t commands framefleet_cuda_engine framefleet_cuda_tests | grep -- ' -x cu ' | sort -u)
"$ptxas12" --version | tail -1
if [ "$fails" -ne 0 ] || [ "$count" -eq 0 ]; then
  echo "check_cuda12: $fails of $count PTX files rejected" >&2
  exit 1
fi
echo "check_cuda12: host side built against CUDA 12.9; ptxas 12.9 assembled all $count PTX files ($ARCHS)"
