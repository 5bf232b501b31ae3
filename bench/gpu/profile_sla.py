"""Where SLA's time goes, kernel by kernel: runs slaAttention at one shape under torch.profiler
(CUPTI records every kernel in the process, ours through the ctypes library included) and prints
each kernel's mean time per call, with the whole call timed by CUDA events beside it.

usage: python3 bench/gpu/profile_sla.py --lib PATH.so [--heads 12 --n 32760 --hd 128 --top-k 0.1]
"""

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attention import attention_inputs, check, load  # noqa: E402
from gpu_timing import time_ms  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--n", type=int, default=32760)
    ap.add_argument("--hd", type=int, default=128)
    ap.add_argument("--top-k", type=float, default=0.1)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    lib = load(args.lib)
    h, n, hd, top_k = args.heads, args.n, args.hd, args.top_k
    q, k, v, out, ws, ws_bytes, sel, _, _, stream = attention_inputs(lib, h, n, hd, top_k)
    proj = (0.05 * torch.randn(hd, hd, device="cuda")).to(torch.bfloat16)
    p = [t.data_ptr() for t in (q, k, v, out)]

    def call():
        check(lib, lib.ff_cuda_sla(h, n, hd, top_k, *p, proj.data_ptr(), sel.data_ptr(), ws.data_ptr(), ws_bytes, stream))

    whole = time_ms(call, 5, 30)[0]
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.calls):
            call()
        torch.cuda.synchronize()
    per = defaultdict(lambda: [0, 0.0])
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            per[e.name][0] += 1
            per[e.name][1] += e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
    rows = sorted(per.items(), key=lambda kv: -kv[1][1])
    busy = sum(t for _, (_, t) in rows) / args.calls / 1e3
    print(f"SLA [1, {h}, {n}, {hd}] top-k {top_k} on {torch.cuda.get_device_name()}: whole call {whole:.3f} ms "
          f"(CUDA events), kernels {busy:.3f} ms per call (profiler; the rest is gaps between them)")
    for name, (count, total) in rows:
        print(f"  {total / args.calls / 1e3:8.4f} ms  x{count / args.calls:4.1f}  {name[:110]}")


if __name__ == "__main__":
    main()
