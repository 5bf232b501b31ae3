#!/usr/bin/env bash
# Packs what `framefleet generate` needs on the GPU machine, which has no Node, into
# native/build-gpu-node (git-ignored; carried with the run): this machine's node binary (xz), the
# node_modules the CLI's generate path imports (tar.xz, without the linters, the compiler, type
# packages, the Kubernetes client and documentation files), and from BUILD the CUDA build of the
# addon, the engine library, the CUDA test binary and the ctypes library, so the same folder
# serves as bench/gpu/run.sh's FF_GPU_PREBUILT. Then it checks the pack here: it unpacks into a
# scratch copy of the checkout, runs a 1-step generate on the CPU with the packed node, modules
# and addon, and checks the 64 MiB carry limit (tracked files, about 23 MiB, plus the pack).
# node alone is 24 MiB compressed, so BUILD should hold code for the GPU machine's architecture
# only (sm_90 for the H200: half the device code of a 90;120 build):
#   PATH=$TK/bin:$PATH CUDACXX=$TK/bin/nvcc CMAKE_BUILD_PARALLEL_LEVEL=2 \
#     FRAMEFLEET_NATIVE_BUILD_DIR=$PWD/native/build-gpu-sm90 node native/scripts/build.mjs \
#     -DCMAKE_CUDA_ARCHITECTURES=90 -DFF_CUBLAS_ROOT=$TK
# (TK: a toolkit folder, e.g. the root bench/gpu/build_local.sh makes). bench/gpu/engine_e2e.sh is
# the counterpart on the GPU machine.
# Usage: bench/gpu/engine_pack.sh [BUILD, default native/build-gpu-sm90]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-native/build-gpu-sm90}
PACK=native/build-gpu-node
for f in framefleet_native.node framefleet_cuda_engine.so framefleet_cuda_tests; do
  [ -f "$BUILD/$f" ] || { echo "engine_pack: $BUILD/$f is missing; build native/ with nvcc into $BUILD first" >&2; exit 1; }
done
rm -rf "$PACK"
mkdir -p "$PACK"
nice -n 10 xz -T2 -9 -c "$(command -v node)" >"$PACK/node.xz"
nice -n 10 tar -C . -cJf "$PACK/node_modules.tar.xz" --exclude='node_modules/@biomejs' --exclude='node_modules/typescript' \
  --exclude='node_modules/@types' --exclude='node_modules/@kubernetes' --exclude='node_modules/.cache' \
  --exclude='*.d.ts' --exclude='*.d.cts' --exclude='*.d.mts' --exclude='*.map' --exclude='*.md' node_modules
cp "$BUILD/framefleet_native.node" "$BUILD/framefleet_cuda_engine.so" "$BUILD/framefleet_cuda_tests" "$PACK/"
# The ctypes library too, so the pack also serves as run.sh's FF_GPU_PREBUILT.
[ -f "$BUILD/libframefleet_cuda_capi.so" ] && cp "$BUILD/libframefleet_cuda_capi.so" "$PACK/"
strip "$PACK"/*.so "$PACK"/*.node "$PACK/framefleet_cuda_tests"
# The CUDA binaries travel compressed (mostly device code: about a third); run.sh unpacks them.
for f in framefleet_cuda_engine.so framefleet_cuda_tests libframefleet_cuda_capi.so; do
  [ -f "$PACK/$f" ] && nice -n 10 xz -T2 -9 "$PACK/$f"
done

# The pack on its own: a scratch checkout (tracked files), the packed node and modules, a
# 1-step generate on the CPU through the packed addon.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z | xargs -0 tar -cf - | tar -C "$scratch" -xf -
mkdir -p "$scratch/$PACK"
cp "$PACK"/* "$scratch/$PACK/"
for f in "$scratch/$PACK"/framefleet_cuda_tests.xz; do bash bench/gpu/unxz.sh "$f" "${f%.xz}"; done  # unpacks as run.sh does
(
  cd "$scratch"
  xz -dc "$PACK/node.xz" >"$PACK/node" && chmod +x "$PACK/node"
  tar -xJf "$PACK/node_modules.tar.xz"
  FRAMEFLEET_NATIVE_ADDON="$PWD/$PACK/framefleet_native.node" FRAMEFLEET_BACKEND=cpu "$PACK/node" bin/framefleet.js generate \
    --prompt "a red circle moving left" --profile turbo --steps 1 --format png-frames --out "$scratch/out" --json >"$scratch/report.json"
  "$PACK/node" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`pack check: generate ran on ${r.backend} in ${r.timings.total.toFixed(2)} s`)' "$scratch/report.json"
)
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
packed=$(du -cb "$PACK"/* | tail -1 | cut -f1)
echo "tracked files $((tracked >> 20)) MiB + pack $((packed >> 20)) MiB = $(((tracked + packed) >> 20)) MiB (limit 64 MiB)"
[ $((tracked + packed)) -le $((64 << 20)) ] || { echo "engine_pack: over the carry limit" >&2; exit 1; }
ls -la "$PACK"
