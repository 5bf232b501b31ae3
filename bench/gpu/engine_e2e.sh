#!/usr/bin/env bash
# On the GPU machine: `framefleet generate` end to end with the bundled model, on the GPU and on
# the CPU, with the Node, node_modules and CUDA binaries that bench/gpu/engine_pack.sh packed
# into native/build-gpu-node (carried). One process per (profile, backend): its report's load
# time holds the CUDA context and the weight upload, its denoise time the first evaluations'
# graph capture. Prints one line per run (backend as the report names it, stage timings) and the
# GPU's speed-up per profile. Reports go under $OUT/e2e. Needs no ffmpeg (png-frames).
# Usage: OUT=dir [FF_E2E_PROFILES="baseline turbo"] bash bench/gpu/engine_e2e.sh   (run.sh calls it)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out/gpu}
PACK=${FF_GPU_NODE:-native/build-gpu-node}
if [ ! -f "$PACK/node.xz" ]; then
  echo "engine e2e: no packed Node in $PACK (run bench/gpu/engine_pack.sh on the build machine and carry it); skipped"
  exit 0
fi
mkdir -p "$OUT/e2e"
NODE="$OUT/e2e/node"
bash bench/gpu/unxz.sh "$PACK/node.xz" "$NODE"
# tar's xz filter where the image has xz, else Python's tarfile.
if [ ! -d node_modules/tsx ]; then
  if command -v xz >/dev/null; then tar -xJf "$PACK/node_modules.tar.xz"
  else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(".")' "$PACK/node_modules.tar.xz"; fi
fi
export FRAMEFLEET_NATIVE_ADDON="$PWD/$PACK/framefleet_native.node"
"$NODE" --import tsx -e 'import("./src/native/index.ts").then((m) => { const c = m.capabilities(); console.log("engine capabilities:", JSON.stringify({ backends: c.backends, cuda: c.cuda, threads: c.threads })); })'
prompt="a red circle moving left"
for profile in ${FF_E2E_PROFILES:-baseline turbo}; do
  for backend in cuda cpu; do
    report="$OUT/e2e/$backend-$profile.json"
    start=$(date +%s%N)
    FRAMEFLEET_BACKEND=$backend timeout 300 "$NODE" bin/framefleet.js generate --prompt "$prompt" --seed 3 \
      --profile "$profile" --format png-frames --out "$OUT/e2e/$backend-$profile" --json >"$report" 2>"$OUT/e2e/$backend-$profile.err"
    status=$?
    wall_ms=$((($(date +%s%N) - start) / 1000000))
    if [ $status -ne 0 ]; then
      echo "e2e $backend $profile: exit $status: $(tail -1 "$OUT/e2e/$backend-$profile.err")"
      continue
    fi
    "$NODE" -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const t = r.timings, f = (x) => (x ?? 0).toFixed(3);
      console.log(`e2e ${process.argv[2]} ${r.profile}: ${r.backend} | process ${process.argv[3]} ms | load ${f(t.load)} text ${f(t.textEncode)} denoise ${f(t.denoise)} decode ${f(t.decode)} total ${f(t.total)} s | nfe ${r.nfe}`);
    ' "$report" "$backend" "$wall_ms"
  done
  "$NODE" -e '
    const fs = require("fs");
    const [g, c] = ["cuda", "cpu"].map((b) => { try { return JSON.parse(fs.readFileSync(`${process.argv[1]}/e2e/${b}-${process.argv[2]}.json`, "utf8")); } catch { return null; } });
    if (g && c) console.log(`e2e ${process.argv[2]}: GPU/CPU denoise ${(c.timings.denoise / g.timings.denoise).toFixed(1)}x, total ${(c.timings.total / g.timings.total).toFixed(1)}x`);
  ' "$OUT" "$profile"
done
# `framefleet bench --quick` on the GPU: every row in one process, an untimed warm-up per row, then
# medians, so the table holds steady-state times (the single runs above include the CUDA context,
# cuBLAS start-up and graph capture). Without ffmpeg on the machine the clips are written as APNG.
# FF_E2E_BENCH=0 skips it.
if [ "${FF_E2E_BENCH:-1}" != 0 ]; then
  FRAMEFLEET_BACKEND=cuda timeout 240 "$NODE" bin/framefleet.js bench --quick --json >"$OUT/e2e/bench-cuda.json" 2>"$OUT/e2e/bench-cuda.err"
  status=$?
  if [ $status -ne 0 ]; then
    echo "e2e bench on the GPU: exit $status: $(tail -1 "$OUT/e2e/bench-cuda.err")"
  else
    "$NODE" -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`bench --quick on ${r.machine.gpu ?? "?"} (${r.suite.prompts} prompts):`);
      for (const x of r.rows) console.log(`  ${x.profile.padEnd(10)} total ${x.seconds.toFixed(4)} s  denoise ${x.denoiseSeconds.toFixed(4)} s  speedup ${x.speedup.toFixed(1)}x  denoise ${x.denoiseSpeedup.toFixed(1)}x  accuracy ${x.promptAccuracy.toFixed(2)}  psnr ${x.psnrVsBaseline === null ? "-" : x.psnrVsBaseline.toFixed(1)}`);
    ' "$OUT/e2e/bench-cuda.json"
  fi
fi
