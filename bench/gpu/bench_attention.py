"""Times the engine's CUDA attention kernels against torch.nn.functional.scaled_dot_product_attention.

Our kernels are called through native/build-gpu/libframefleet_cuda_capi.so (ctypes) on PyTorch's
current stream, on the same bf16 tensors that SDPA gets, so both are timed the same way: CUDA
events around each call, warm-up first, median of many runs. Accuracy is the cosine and relative L2
against an fp32 reference: fp32 SDPA for flash/sage/SDPA itself, train/model.py's sla_attention in
fp32 (the definition of SLA) for ours, on the first heads. Rows with _wgmma are the same calls with
FF_CUDA_ATTN_IMPL=wgmma (the Hopper kernels, sm_90 only; _serial: without the intra-warpgroup
overlap, FF_CUDA_WGMMA_SERIAL=1; _fp8: e4m3 P.V, FF_CUDA_WGMMA_PV=fp8; _ws / _wspp: the warp-specialized
TMA kernel, FF_CUDA_WGMMA_KERNEL, the other _wgmma rows its cpasync kernel), the others with the
mma.sync kernels; ours_flash_bf16_wgmma / _wgmmapp are dense bf16 on the warp-specialized kernel
(FF_CUDA_FLASH_IMPL; plain ours_flash_bf16 pins mma). Prints a table last and writes JSON.

usage: python3 bench/gpu/bench_attention.py --lib PATH.so --out results.json [--big | --big-only]
"""

import argparse
import ctypes
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_timing import time_ms  # noqa: E402
from model import sla_attention  # noqa: E402  (the PyTorch reference of the model family)


def load(lib_path):
    lib = ctypes.CDLL(lib_path)
    vp, i, f, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_size_t
    lib.ff_cuda_last_error.restype = ctypes.c_char_p
    lib.ff_cuda_workspace_bytes.restype = sz
    lib.ff_cuda_workspace_bytes.argtypes = [i, i, i]
    lib.ff_cuda_flash.argtypes = [i, i, i, vp, vp, vp, vp, vp]
    lib.ff_cuda_sage.argtypes = [i, i, i, vp, vp, vp, vp, vp, sz, vp]
    lib.ff_cuda_sla.argtypes = [i, i, i, f, vp, vp, vp, vp, vp, vp, vp, sz, vp]
    lib.ff_cuda_sla_stages.argtypes = [i, i, i, f, vp, vp, vp, vp, vp, vp, sz, vp, vp]
    lib.ff_cuda_sage_uses_wgmma.argtypes = [i]
    return lib


def check(lib, rc):
    if rc != 0:
        raise RuntimeError(lib.ff_cuda_last_error().decode())


def compare(x, ref):
    x, ref = x.double().flatten(), ref.double().flatten()
    if not torch.isfinite(x).all():
        return {"cos": float("nan"), "rel_l2": float("nan"), "finite": False}
    return {
        "cos": float(torch.dot(x, ref) / (x.norm() * ref.norm())),
        "rel_l2": float((x - ref).norm() / ref.norm()),
        "finite": True,
    }


def attention_inputs(lib, heads, n, hd, top_k):
    """Seeded bf16 q, k, v of [1, heads, n, hd] (k with a per-channel offset, as real keys have),
    an output buffer, the kernels' workspace, SLA's selection buffer [heads, nb, kc] and the stream."""
    torch.manual_seed(0)
    dev = "cuda"
    shape = (1, heads, n, hd)
    q = torch.randn(shape, device=dev, dtype=torch.bfloat16)
    k = (torch.randn(shape, device=dev) + 2.0 * torch.randn(1, heads, 1, hd, device=dev)).to(torch.bfloat16)
    v = torch.randn(shape, device=dev, dtype=torch.bfloat16)
    out = torch.empty_like(q)
    ws_bytes = lib.ff_cuda_workspace_bytes(heads, n, hd)
    ws = torch.empty(ws_bytes, device=dev, dtype=torch.uint8)
    nb = (n + 63) // 64
    kc = min(max(int(math.floor(top_k * nb + 0.5)), 1), nb)
    sel = torch.empty(heads, nb, kc, device=dev, dtype=torch.int32)
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    return q, k, v, out, ws, ws_bytes, sel, nb, kc, stream


def wgmma_available(lib, hd):
    """Whether FF_CUDA_ATTN_IMPL=wgmma runs the Hopper kernels for this head_dim here."""
    os.environ["FF_CUDA_ATTN_IMPL"] = "wgmma"
    ok = bool(lib.ff_cuda_sage_uses_wgmma(hd))
    os.environ["FF_CUDA_ATTN_IMPL"] = "mma"
    return ok


def sla_stages(lib, heads, n, hd, top_k, p, proj, ws, ws_bytes, stream, impl):
    """Where SLA's time goes with the given kernel implementation: each stage's median over 20 timed calls."""
    os.environ["FF_CUDA_ATTN_IMPL"] = impl
    # the defaults of wgmma: SLA's sparse branch on the warp-specialized kernel, e4m3 P.V
    os.environ["FF_CUDA_WGMMA_KERNEL"] = "ws"
    os.environ["FF_CUDA_WGMMA_PV"] = "fp8" if impl == "wgmma" else "bf16"
    os.environ["FF_CUDA_WGMMA_SERIAL"] = "0"
    stages = []
    ms = (ctypes.c_float * 5)()
    for _ in range(23):
        check(lib, lib.ff_cuda_sla_stages(heads, n, hd, top_k, *p, proj.data_ptr(), ws.data_ptr(), ws_bytes, stream, ms))
        stages.append(list(ms))
    names = ["quantize+pool+states", "block map", "sparse (sage)", "linear z_all", "linear sums+out"]
    med = [statistics.median(s[i] for s in stages[3:]) for i in range(5)]
    print(f"SLA stages [1, {heads}, {n}, {hd}] {impl} ms: " + ", ".join(f"{a} {b:.3f}" for a, b in zip(names, med)))
    return {"shape": [1, heads, n, hd], "kernel": "sla_stages_ms", "impl": impl, **dict(zip(names, med))}


def bench_shape(lib, heads, n, hd, top_k, reps, ref_heads, rows, flush):
    """Appends a row per kernel to rows and calls flush after each, so that what was measured
    survives a kernel that faults or hangs later in the list."""
    dev = "cuda"
    q, k, v, out, ws, ws_bytes, sel, nb, kc, stream = attention_inputs(lib, heads, n, hd, top_k)
    proj = (0.05 * torch.randn(hd, hd, device=dev)).to(torch.bfloat16)
    p = [t.data_ptr() for t in (q, k, v, out)]
    dense_flops = 4.0 * heads * n * n * hd

    runs = {
        "sdpa_bf16": lambda: F.scaled_dot_product_attention(q, k, v),
        "ours_flash_bf16": lambda: check(lib, lib.ff_cuda_flash(heads, n, hd, *p, stream)),
        "ours_sage_int8": lambda: check(lib, lib.ff_cuda_sage(heads, n, hd, *p, ws.data_ptr(), ws_bytes, stream)),
        "ours_flash_bf16_narrow": lambda: check(lib, lib.ff_cuda_flash(heads, n, hd, *p, stream)),
        "ours_sage_int8_narrow": lambda: check(lib, lib.ff_cuda_sage(heads, n, hd, *p, ws.data_ptr(), ws_bytes, stream)),
        f"ours_sla_top{top_k}_sparse_only": lambda: check(
            lib, lib.ff_cuda_sla(heads, n, hd, top_k, *p, None, sel.data_ptr(), ws.data_ptr(), ws_bytes, stream)
        ),
        f"ours_sla_top{top_k}": lambda: check(
            lib, lib.ff_cuda_sla(heads, n, hd, top_k, *p, proj.data_ptr(), sel.data_ptr(), ws.data_ptr(), ws_bytes, stream)
        ),
    }
    runs[f"ours_sla_top{top_k}_wide"] = runs[f"ours_sla_top{top_k}"]
    # The Hopper wgmma kernels (FF_CUDA_ATTN_IMPL=wgmma) beside the mma.sync ones, where they apply.
    wgmma = wgmma_available(lib, hd)
    if wgmma:
        for name in ("ours_sage_int8", f"ours_sla_top{top_k}_sparse_only", f"ours_sla_top{top_k}"):
            runs[name + "_wgmma"] = runs[name]
        runs["ours_sage_int8_wgmma_serial"] = runs["ours_sage_int8"]  # without the intra-warpgroup overlap
        runs["ours_sage_int8_wgmma_fp8"] = runs["ours_sage_int8"]  # e4m3 P.V
        runs[f"ours_sla_top{top_k}_wgmma_fp8"] = runs[f"ours_sla_top{top_k}"]
        for kernel in ("ws", "wspp"):  # the warp-specialized TMA kernel, FF_CUDA_WGMMA_KERNEL
            runs[f"ours_sage_int8_wgmma_{kernel}"] = runs["ours_sage_int8"]
            runs[f"ours_sage_int8_wgmma_{kernel}_fp8"] = runs["ours_sage_int8"]
        # SLA's sparse branch on the warp-specialized kernel (bf16 P.V)
        for pv in ("", "_fp8"):
            runs[f"ours_sla_top{top_k}_sparse_only_wgmma_ws{pv}"] = runs[f"ours_sla_top{top_k}_sparse_only"]
            runs[f"ours_sla_top{top_k}_wgmma_ws{pv}"] = runs[f"ours_sla_top{top_k}"]
        # dense bf16 on the warp-specialized kernel (FF_CUDA_FLASH_IMPL; ours_flash_bf16 is mma.sync)
        runs["ours_flash_bf16_wgmma"] = runs["ours_flash_bf16"]
        runs["ours_flash_bf16_wgmmapp"] = runs["ours_flash_bf16"]
    else:
        print(f"[1, {heads}, {n}, {hd}]: no wgmma kernel here (needs sm_90); mma.sync only")
    warmup = 3 if n > 10000 else 10
    sdpa_ms = None
    rh = min(ref_heads, heads)
    with torch.no_grad():
        ref_dense = F.scaled_dot_product_attention(q[:, :rh].float(), k[:, :rh].float(), v[:, :rh].float())
        ref_sla = sla_attention(q[:, :rh].float(), k[:, :rh].float(), v[:, :rh].float(), top_k, proj.float())
        ref_sla_sparse = sla_attention(q[:, :rh].float(), k[:, :rh].float(), v[:, :rh].float(), top_k, None)
    for name, fn in runs.items():
        os.environ["FF_CUDA_ATTN_NARROW"] = "1" if name.endswith("_narrow") else "0"
        os.environ["FF_CUDA_SLA_WIDE"] = "1" if name.endswith("_wide") else "0"
        os.environ["FF_CUDA_ATTN_IMPL"] = "wgmma" if "_wgmma" in name else "mma"
        os.environ["FF_CUDA_WGMMA_SERIAL"] = "1" if name.endswith("_serial") else "0"
        os.environ["FF_CUDA_WGMMA_PV"] = "fp8" if name.endswith("_fp8") else "bf16"
        os.environ["FF_CUDA_WGMMA_KERNEL"] = "wspp" if "_wspp" in name else "ws" if "_ws" in name else "cpasync"
        os.environ["FF_CUDA_FLASH_IMPL"] = "wgmmapp" if name.endswith("_wgmmapp") else "wgmma" if name.endswith("_wgmma") else "mma"
        out.fill_(float("nan"))
        med, lo, hi = time_ms(fn, warmup, reps)
        torch.cuda.synchronize()
        got = (sdpa_out := F.scaled_dot_product_attention(q, k, v)) if name == "sdpa_bf16" else out
        if name == "sdpa_bf16":
            sdpa_ms = med
        if "sla" in name:
            ref = ref_sla_sparse if "sparse_only" in name else ref_sla
            acc = compare(got[:, :rh], ref)
            acc_dense = compare(got[:, :rh], ref_dense)
            acc["cos_vs_dense"] = acc_dense["cos"]
        else:
            acc = compare(got[:, :rh], ref_dense)
        rows.append(
            {
                "shape": [1, heads, n, hd],
                "kernel": name,
                "median_ms": med,
                "min_ms": lo,
                "max_ms": hi,
                "reps": reps,
                "tflops_dense_equivalent": dense_flops / (med * 1e-3) / 1e12,
                "speedup_vs_sdpa": sdpa_ms / med,
                "ref_heads": rh,
                **acc,
            }
        )
        flush()
        del got
    del sdpa_out
    for impl in ("mma", "wgmma") if wgmma else ("mma",):
        rows.append(sla_stages(lib, heads, n, hd, top_k, p, proj, ws, ws_bytes, stream, impl))
        flush()
    os.environ["FF_CUDA_ATTN_IMPL"] = "mma"


def sla_block_check(lib, heads, n, hd, top_k, samples=8):
    """SLA at a size whose full fp32 reference does not fit a dense mask: our block map of head 0
    against PyTorch's (train/model.py's rule), and our sparse-only output of a few query blocks
    against exact fp64 softmax attention over PyTorch's selected keys."""
    dev = "cuda"
    q, k, v, out, ws, ws_bytes, sel, nb, kc, stream = attention_inputs(lib, heads, n, hd, top_k)
    check(lib, lib.ff_cuda_sla(heads, n, hd, top_k, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), None,
                               sel.data_ptr(), ws.data_ptr(), ws_bytes, stream))
    torch.cuda.synchronize()
    q0, k0, v0 = q[0, 0].double(), k[0, 0].double(), v[0, 0].double()
    ks = k0 - k0.mean(0, keepdim=True)
    pad = nb * 64 - n
    cnt = torch.full((nb, 1), 64.0, device=dev, dtype=torch.float64)
    cnt[-1] = 64 - pad
    pool = lambda x: F.pad(x, (0, 0, 0, pad)).view(nb, 64, hd).sum(1) / cnt  # noqa: E731
    scores = pool(q0).float() @ pool(ks).float().t()
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :kc]
    ref_sel = torch.sort(order, dim=-1).values.to(torch.int32)
    same = (ref_sel == sel[0]).all(-1)
    cosines = []
    for b in torch.linspace(0, nb - 1, samples).long().tolist():
        keys = (ref_sel[b].long()[:, None] * 64 + torch.arange(64, device=dev)[None]).flatten()
        keys = keys[keys < n]
        rows = slice(b * 64, min(n, b * 64 + 64))
        logits = (q0[rows] @ ks[keys].t()) / math.sqrt(hd)
        ref = torch.softmax(logits, -1) @ v0[keys]
        cosines.append(compare(out[0, 0, rows], ref)["cos"])
    res = {"shape": [1, heads, n, hd], "kernel": "sla_block_check", "block_rows_same": int(same.sum()),
           "block_rows": nb, "sampled_block_cos_min": min(cosines), "sampled_block_cos": cosines}
    print(f"SLA check [1, {heads}, {n}, {hd}] head 0: block map rows equal to PyTorch's {res['block_rows_same']}/{nb}; "
          f"sparse output of {samples} query blocks vs fp64 over PyTorch's blocks: min cos {min(cosines):.5f}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big", action="store_true", help="also [1, 40, 75600, 128] (Wan2.1-14B at 720p)")
    ap.add_argument("--big-only", action="store_true", help="only [1, 40, 75600, 128]")
    ap.add_argument("--top-k", type=float, default=0.1)
    ap.add_argument("--check-big", action="store_true", help="only the SLA block check at [1, 40, 75600, 128]")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    lib = load(args.lib)
    name = torch.cuda.get_device_name()
    if args.check_big:
        res = sla_block_check(lib, 40, 75600, 128, args.top_k)
        Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": [res]}, indent=1))
        return
    rows = []
    shapes = [] if args.big_only else [(12, 32760, 128, 30, 2), (3, 2304, 64, 200, 3)]
    if args.big or args.big_only:
        shapes.append((40, 75600, 128, 10, 1))
    def flush():
        Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))

    for heads, n, hd, reps, ref_heads in shapes:
        try:
            bench_shape(lib, heads, n, hd, args.top_k, reps, ref_heads, rows, flush)
        except Exception as e:  # keep what was measured; say what failed
            print(f"shape [1, {heads}, {n}, {hd}] failed: {e}")
        torch.cuda.empty_cache()
        flush()
    print(f"\ndevice: {name}  torch {torch.__version__}  (median of CUDA-event timings; TFLOP/s = 4*H*N^2*hd / time)")
    print(f"{'shape':<22}{'kernel':<36}{'ms':>9}{'TFLOP/s':>9}{'vs SDPA':>9}{'cos':>10}{'relL2':>9}{'cos/dense':>10}")
    for r in rows:
        if r["kernel"] == "sla_stages_ms":
            continue
        cd = r.get("cos_vs_dense")
        print(
            f"{str(r['shape']):<22}{r['kernel']:<36}{r['median_ms']:>9.3f}{r['tflops_dense_equivalent']:>9.1f}"
            f"{r['speedup_vs_sdpa']:>8.2f}x{r['cos']:>10.5f}{r['rel_l2']:>9.2e}{'' if cd is None else f'{cd:>10.4f}'}"
        )

if __name__ == "__main__":
    main()
