#!/usr/bin/env bash
# unxz.sh SRC.xz DST: decompresses one xz file with xz where the machine has it, else with
# Python's lzma (the GPU machine's image may lack xz). DST is made executable.
set -euo pipefail
if command -v xz >/dev/null; then
  xz -dc "$1" >"$2"
else
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
fi
chmod +x "$2"
