"""The DiT forward on the CUDA backend against train/model.py's DiT in PyTorch eager.

One random-weight model of the family (train/model.py's DiT, its own initialisation, proj_l drawn
N(0, 0.02) so the SLA linear branch does work) runs twice on the same inputs: PyTorch eager
(SDPA attention) and our blocks + head (native/src/kernels/cuda/dit_forward.cu through
libframefleet_cuda_capi.so), with patchify, patch_embed, the conditioning and unpatchify done by
PyTorch in both. One forward is timed (CUDA events, median); the profiles follow from it as
TurboDiffusion counts the denoising stage: baseline = 50 steps x 2 passes (CFG), turbo = 4 steps x
1 pass. Cross-attention sees every text token (no padding).

W8A8: the per-op breakdown (CUDA events inside ditForward, summed over the layers) of the SLA
forward with every linear bf16 and with every linear int8; "auto" then runs as int8 exactly the
linear groups whose stage the int8 run made faster, and the row "+ W8A8" is that forward. With the
fused W8A8 GEMM the same again ("fused": the default, the FFN in its FP8 form, fc1 writing e4m3
and fc2 e4m3 x e4m3), and the switches of dit_forward.cu on top of it, one at a time (VARIANTS:
the FFN's INT8 form, fc2's e4m3 GEMM with promoted accumulation, the q/k/v GEMMs merged into one,
the cross-attention on the Sage kernel, every GEMM on the 1x1 or on the 2x1 cluster, the fp32
residual stream, every GEMM on the cooperative schedule, dense bf16 attention with both consumer
warpgroups at once instead of ping-pong, SLA's quantization and linear-output kernels launched heads
first), each a row and a breakdown column.

--focus leaves out what only explains the choices (the mma.sync attention rows on sm_90, cuBLAS's
int32 W8A8 path and its "auto" row, the variants in FOCUS_SKIP) to keep a run short.

Kernel choices on an sm_90 card: "ours flash bf16" is dense bf16 on the warp-specialized wgmma
kernel with ping-pong consumers (the default there; the "(mma)" row pins FF_CUDA_FLASH_IMPL=mma); sage and SLA run once on
the mma.sync kernels and once with FF_CUDA_ATTN_IMPL=wgmma (rows marked wgmma), and the W8A8 rows
and the breakdown use whichever SLA forward was faster (named in their labels).

usage: python3 bench/gpu/bench_dit.py --lib PATH.so --out dit.json [--small-only] [--focus]
"""

import argparse
import ctypes
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_timing import time_ms  # noqa: E402
from model import DiT  # noqa: E402

MATRICES = {0, 2, 4, 6, 10, 13, 15, 17, 19, 23, 25}
# dit_forward.h: DitLinear bit -> the DitStage that holds that linear group.
LINEAR_STAGES = {0: 1, 1: 4, 2: 5, 3: 6, 4: 8, 5: 9, 6: 10, 7: 11}
LINEAR_NAMES = ["self qkv", "self o", "cross q", "cross kv", "cross o", "fc1", "fc2", "head"]
ALL_LINEARS = (1 << len(LINEAR_NAMES)) - 1
SLA = 2
# Switches on top of the fused W8A8 SLA forward: (column name, row label, environment).
VARIANTS = (
    ("ffn int8", "FFN INT8", {"FF_CUDA_FFN_FP8": "0"}),
    ("e4m3 prom", "FFN e4m3 promoted", {"FF_CUDA_FP8_ACCUM": "promoted"}),
    ("qkv merged", "q/k/v merged", {"FF_CUDA_QKV": "merged"}),
    ("x sage", "cross-attn Sage", {"FF_CUDA_CROSS_ATTN": "sage"}),
    ("cluster 1x1", "GEMM cluster 1x1", {"FF_CUDA_INT8_GEMM_CLUSTER": "1x1"}),
    ("cluster 2x1", "GEMM cluster 2x1", {"FF_CUDA_INT8_GEMM_CLUSTER": "2x1"}),
    ("fp32 res", "fp32 residual", {"FF_CUDA_RESIDUAL": "fp32"}),
    ("coop", "GEMM cooperative", {"FF_CUDA_INT8_GEMM_SCHEDULE": "coop"}),
    ("coop 2x1", "GEMM cooperative 2x1", {"FF_CUDA_INT8_GEMM_SCHEDULE": "coop", "FF_CUDA_INT8_GEMM_CLUSTER": "2x1"}),
    ("flash ws", "cross-attn flash both consumers", {"FF_CUDA_FLASH_IMPL": "wgmma"}),
    ("heads 1st", "attention launch heads first", {"FF_CUDA_ATTN_ORDER": "heads"}),
)
# Measured already and kept off by default (docs/CUDA.md): left out under --focus.
FOCUS_SKIP = {"ffn int8", "e4m3 prom", "qkv merged", "x sage", "cluster 1x1", "cluster 2x1", "fp32 res", "coop", "coop 2x1",
              "flash ws"}
SCHEDULES = (("coop", "1x1"), ("pingpong", "1x1"), ("coop", "2x1"), ("pingpong", "2x1"))


def block_tensors(blk):
    a1, a2, f = blk.attn1, blk.attn2, blk.ffn
    return [
        a1.q.weight, a1.q.bias, a1.k.weight, a1.k.bias, a1.v.weight, a1.v.bias, a1.o.weight, a1.o.bias,
        a1.norm_q.weight, a1.norm_k.weight, a1.proj_l.weight, blk.norm3.weight, blk.norm3.bias,
        a2.q.weight, a2.q.bias, a2.k.weight, a2.k.bias, a2.v.weight, a2.v.bias, a2.o.weight, a2.o.bias,
        a2.norm_q.weight, a2.norm_k.weight, f.fc1.weight, f.fc1.bias, f.fc2.weight, f.fc2.bias,
    ]  # fmt: skip


class Ours:
    def __init__(self, lib, model, latent_shape, ctx_tokens):
        self.lib, self.model = lib, model
        cfg = model.cfg
        c, t, h, w = latent_shape
        pt, ph, pw = model.patch
        self.grid = (t // pt, h // ph, w // pw)
        n = self.grid[0] * self.grid[1] * self.grid[2]
        self.n, self.d = n, cfg["dim"]
        self.p = c * pt * ph * pw
        dims = [n, cfg["dim"], cfg["heads"], cfg["ffn_dim"], cfg["layers"], ctx_tokens, self.p, *self.grid]
        self.dims = (ctypes.c_int * 10)(*dims)
        self.keep = []
        ptrs = []
        for blk in model.blocks:
            for i, tsr in enumerate(block_tensors(blk)):
                x = tsr.detach().to(torch.bfloat16 if i in MATRICES else torch.float32).contiguous()
                self.keep.append(x)
                ptrs.append(x.data_ptr())
        self.ptrs = (ctypes.c_void_p * len(ptrs))(*ptrs)
        self.head_w = model.head.proj.weight.detach().to(torch.bfloat16).contiguous()
        self.head_b = model.head.proj.bias.detach().float().contiguous()
        self.scratch_bytes = lib.ff_cuda_dit_scratch_bytes(self.dims, 1)
        self.scratch = torch.empty(self.scratch_bytes, dtype=torch.uint8, device="cuda")
        self.out = torch.empty(n, self.p, dtype=torch.bfloat16, device="cuda")
        wbytes = lib.ff_cuda_dit_int8_weight_bytes(self.dims)
        self.int8_weights = torch.empty(wbytes, dtype=torch.uint8, device="cuda")
        rc = lib.ff_cuda_dit_quantize_weights(
            self.dims, self.ptrs, ctypes.c_void_p(self.head_w.data_ptr()), ctypes.c_void_p(self.int8_weights.data_ptr()),
            ctypes.c_size_t(wbytes), ctypes.c_void_p(torch.cuda.current_stream().cuda_stream),
        )  # fmt: skip
        if rc != 0:
            raise RuntimeError(lib.ff_cuda_last_error().decode())
        self.stages = [lib.ff_cuda_dit_stage_name(i).decode() for i in range(lib.ff_cuda_dit_stage_count())]

    @torch.no_grad()
    def forward(self, x, t, ctx, attention, top_k=0.1, int8_linears=0, stage_ms=None):
        m = self.model
        tok = m.patch_embed(m.patchify(x))[0].float().contiguous()
        e, mm, c = m.conditioning(t, ctx)
        mod = torch.stack([(mm[0] + blk.modulation).float() for blk in m.blocks]).contiguous()
        head_mod = (m.head.modulation + e[0][None]).float().contiguous()
        c16 = c[0].to(torch.bfloat16).contiguous()
        self.out.fill_(float("nan"))
        rc = self.lib.ff_cuda_dit_forward(
            self.dims, ctypes.c_float(m.eps), ctypes.c_double(m.cfg["rope_theta"]), attention, ctypes.c_float(top_k),
            ctypes.c_void_p(tok.data_ptr()), ctypes.c_void_p(c16.data_ptr()), ctypes.c_void_p(mod.data_ptr()), self.ptrs,
            ctypes.c_void_p(head_mod.data_ptr()), ctypes.c_void_p(self.head_w.data_ptr()),
            ctypes.c_void_p(self.head_b.data_ptr()), ctypes.c_void_p(self.out.data_ptr()),
            ctypes.c_void_p(self.scratch.data_ptr()), ctypes.c_size_t(self.scratch_bytes),
            ctypes.c_void_p(torch.cuda.current_stream().cuda_stream), ctypes.c_uint(int8_linears),
            ctypes.c_void_p(self.int8_weights.data_ptr()), stage_ms,
        )  # fmt: skip
        if rc != 0:
            raise RuntimeError(self.lib.ff_cuda_last_error().decode())
        return m.unpatchify(self.out[None].to(x.dtype), self.grid)

    def breakdown(self, x, t, ctx, attention, int8_linears, reps=3):
        """Per-stage ms of one forward (median over reps runs after the timed ones warmed up)."""
        runs = []
        for _ in range(reps):
            ms = (ctypes.c_float * len(self.stages))()
            self.forward(x, t, ctx, attention, int8_linears=int8_linears, stage_ms=ms)
            runs.append(list(ms))
        return [sorted(r[i] for r in runs)[len(runs) // 2] for i in range(len(self.stages))]


def load(path):
    lib = ctypes.CDLL(path)
    lib.ff_cuda_last_error.restype = ctypes.c_char_p
    lib.ff_cuda_dit_scratch_bytes.restype = ctypes.c_size_t
    lib.ff_cuda_dit_scratch_bytes.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.ff_cuda_int8_gemm_fused_available.restype = ctypes.c_int
    lib.ff_cuda_dit_int8_weight_bytes.restype = ctypes.c_size_t
    lib.ff_cuda_dit_int8_weight_bytes.argtypes = [ctypes.c_void_p]
    lib.ff_cuda_dit_stage_name.restype = ctypes.c_char_p
    lib.ff_cuda_dit_stage_name.argtypes = [ctypes.c_int]
    vp = ctypes.c_void_p
    lib.ff_cuda_dit_quantize_weights.argtypes = [vp, vp, vp, vp, ctypes.c_size_t, vp]
    ci = ctypes.c_int
    lib.ff_cuda_gemm_int8_dequant.argtypes = [ci, ci, ci, vp, vp, vp, vp, vp, ci, vp, vp]
    lib.ff_cuda_dit_forward.argtypes = [
        vp, ctypes.c_float, ctypes.c_double, ctypes.c_int, ctypes.c_float, vp, vp, vp, vp, vp, vp, vp, vp, vp,
        ctypes.c_size_t, vp, ctypes.c_uint, vp, vp,
    ]  # fmt: skip
    return lib


def cos(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    if not torch.isfinite(a).all():
        return float("nan")
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def run_config(lib, name, cfg, latent, text_dim, ctx_tokens, dtype, reps, focus=False):
    torch.manual_seed(0)
    with torch.device("cuda"):  # initialise on the GPU: 1.3B parameters drawn on the CPU take long
        model = DiT(cfg, text_dim)
    with torch.no_grad():
        for blk in model.blocks:
            blk.attn1.proj_l.weight.normal_(0.0, 0.02)
    model = model.to(dtype).eval()
    x = torch.randn(1, *latent, device="cuda", dtype=dtype)
    t = torch.tensor([0.7], device="cuda")
    ctx = torch.randn(1, ctx_tokens, text_dim, device="cuda", dtype=dtype)
    key_mask = torch.ones(1, ctx_tokens, dtype=torch.bool, device="cuda")
    ours = Ours(lib, model, latent, ctx_tokens)
    rows = []
    with torch.no_grad():
        ref = model(x, t, ctx, key_mask)
        torch_ms = time_ms(lambda: model(x, t, ctx, key_mask), 1, reps)[0]
        rows.append({"config": name, "impl": f"pytorch eager {str(dtype)[6:]} + SDPA", "forward_ms": torch_ms, "cos_vs_torch": 1.0})

        def timed(label, att, int8_linears=0):
            v = ours.forward(x, t, ctx, att, int8_linears=int8_linears)
            ms = time_ms(lambda: ours.forward(x, t, ctx, att, int8_linears=int8_linears), 1, reps)[0]
            row = {"config": name, "impl": label, "forward_ms": ms, "cos_vs_torch": cos(v, ref)}
            rows.append({**row, "int8_linears": int8_linears})

        hopper = torch.cuda.get_device_capability() == (9, 0)
        if focus and hopper:
            timed("ours flash bf16", 0)
            sla_impl = "wgmma"
            os.environ["FF_CUDA_ATTN_IMPL"] = sla_impl
            timed("ours SLA top0.1 (sage, wgmma)", SLA)
        else:
            os.environ["FF_CUDA_ATTN_IMPL"] = "mma"  # sage and SLA on mma.sync first (sm_90 defaults to wgmma)
            for label, att in (("ours flash bf16", 0), ("ours sage int8", 1), ("ours SLA top0.1 (sage)", SLA)):
                timed(label, att)
            sla_impl = "mma"
        if hopper and not focus:
            os.environ["FF_CUDA_FLASH_IMPL"] = "mma"
            timed("ours flash bf16 (mma)", 0)
            os.environ.pop("FF_CUDA_FLASH_IMPL")
            os.environ["FF_CUDA_ATTN_IMPL"] = "wgmma"
            timed("ours sage int8 (wgmma)", 1)
            timed("ours SLA top0.1 (sage, wgmma)", SLA)
            if rows[-1]["forward_ms"] < rows[3]["forward_ms"]:
                sla_impl = "wgmma"
            os.environ["FF_CUDA_ATTN_IMPL"] = sla_impl
        w8 = f"ours SLA top0.1 (sage{', wgmma' if sla_impl == 'wgmma' else ''}) + W8A8"
        none = [float("nan")] * len(ours.stages)
        breakdown = {"config": name, "stages": ours.stages, "bf16_ms": ours.breakdown(x, t, ctx, SLA, 0)}
        breakdown.update(int8_ms=none, auto_ms=none, auto_int8=[])
        # cuBLAS's int32 product + dequantInt8 first (left out under --focus where the fused kernel runs).
        if not (focus and lib.ff_cuda_int8_gemm_fused_available()):
            os.environ["FF_CUDA_INT8_GEMM"] = "cublas"
            try:
                timed(w8 + " all", SLA, ALL_LINEARS)
                breakdown["int8_ms"] = ours.breakdown(x, t, ctx, SLA, ALL_LINEARS)
                int8_ms, bf16_ms = breakdown["int8_ms"], breakdown["bf16_ms"]
                auto = sum(1 << bit for bit, st in LINEAR_STAGES.items() if int8_ms[st] < bf16_ms[st])
                timed(w8, SLA, auto)
                breakdown["auto_ms"] = ours.breakdown(x, t, ctx, SLA, auto)
                breakdown["auto_int8"] = [LINEAR_NAMES[b] for b in range(len(LINEAR_NAMES)) if auto >> b & 1]
            except Exception as e:
                print(f"{name}: W8A8 failed: {e}")
            os.environ.pop("FF_CUDA_INT8_GEMM")
        breakdown.update(fused_ms=none, fused_int8=[], variants={})
        if lib.ff_cuda_int8_gemm_fused_available():
            # The same, with the GEMMs' epilogues dequantizing (the default where the kernel exists).
            try:
                breakdown["fused_ms"] = ours.breakdown(x, t, ctx, SLA, ALL_LINEARS)
                fused_ms, bf16_ms = breakdown["fused_ms"], breakdown["bf16_ms"]
                fused = sum(1 << bit for bit, st in LINEAR_STAGES.items() if fused_ms[st] < bf16_ms[st])
                timed(w8 + " fused", SLA, fused)
                breakdown["fused_int8"] = [LINEAR_NAMES[b] for b in range(len(LINEAR_NAMES)) if fused >> b & 1]
            except Exception as e:
                print(f"{name}: fused W8A8 failed: {e}")
            for column, label, env in VARIANTS:  # each switch on top of the fused default
                if focus and column in FOCUS_SKIP:
                    continue
                try:
                    os.environ.update(env)
                    breakdown["variants"][column] = ours.breakdown(x, t, ctx, SLA, ALL_LINEARS)
                    timed(f"{w8} fused, {label}", SLA, ALL_LINEARS)
                except Exception as e:
                    print(f"{name}: fused W8A8, {label} failed: {e}")
                for key in env:
                    os.environ.pop(key, None)
        breakdown["sla_impl"] = sla_impl
        os.environ.pop("FF_CUDA_ATTN_IMPL", None)
    for r in rows:
        r["tokens"] = ours.n
        r["baseline_50x2_s"] = r["forward_ms"] * 100 / 1e3
        r["turbo_4x1_s"] = r["forward_ms"] * 4 / 1e3
    del ours, model
    torch.cuda.empty_cache()
    return rows, breakdown


def gemm_rates(lib, n, dim, ffn):
    """TFLOP/s of the DiT's GEMM shapes: PyTorch's cuBLAS bf16 matmul and int8 _int_mm (int32 out),
    and where the library has it our fused W8A8 GEMM (int8 in, bf16 out with the scales and bias
    applied) on each schedule, checked against the dequantized int32 product."""
    fused = bool(lib.ff_cuda_int8_gemm_fused_available())
    names = " | ".join(f"{sc} {cl}" for sc, cl in SCHEDULES)
    print(f"\nGEMM shapes at {n} tokens (x [M, K] . W[N, K]^T), TFLOP/s: bf16 | int8 -> int32 | fused int8 -> bf16: {names} (cos)")
    out = []
    stream = torch.cuda.current_stream().cuda_stream
    for k, nn in ((dim, dim), (dim, ffn), (ffn, dim)):
        xb = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
        wb = torch.randn(nn, k, device="cuda", dtype=torch.bfloat16)
        xi = torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8)
        wi = torch.randint(-127, 128, (nn, k), device="cuda", dtype=torch.int8)
        flop = 2.0 * n * k * nn
        bf = flop / time_ms(lambda: xb @ wb.t(), 2, 10)[0] / 1e9
        try:
            i8 = flop / time_ms(lambda: torch._int_mm(xi, wi.t()), 2, 10)[0] / 1e9
        except Exception as e:
            print(f"  int8 _int_mm failed: {e}")
            i8 = float("nan")
        fz, cos = {}, float("nan")
        if fused:
            xs = torch.rand(n, device="cuda") * 1e-3 + 1e-4
            ws = torch.rand(nn, device="cuda") * 1e-3 + 1e-4
            bias = torch.randn(nn, device="cuda")
            y = torch.full((n, nn), float("nan"), device="cuda", dtype=torch.bfloat16)

            def run():
                rc = lib.ff_cuda_gemm_int8_dequant(n, nn, k, xi.data_ptr(), wi.data_ptr(), xs.data_ptr(), ws.data_ptr(),
                                                   bias.data_ptr(), 0, y.data_ptr(), stream)
                if rc != 0:
                    raise RuntimeError(lib.ff_cuda_last_error().decode())

            try:
                run()
                ref = torch._int_mm(xi, wi.t()).double() * xs.double()[:, None] * ws.double()[None, :] + bias.double()
                yd = y.double()
                cos = float((yd * ref).sum() / (yd.norm() * ref.norm())) if torch.isfinite(yd).all() else float("nan")
                for schedule, cluster in SCHEDULES:  # FF_CUDA_INT8_GEMM_SCHEDULE, _CLUSTER
                    os.environ["FF_CUDA_INT8_GEMM_SCHEDULE"] = schedule
                    os.environ["FF_CUDA_INT8_GEMM_CLUSTER"] = cluster
                    key = schedule if cluster == "1x1" else f"{schedule} {cluster}"
                    fz[key] = flop / time_ms(run, 2, 10)[0] / 1e9
            except Exception as e:
                print(f"  fused int8 failed: {e}")
            os.environ.pop("FF_CUDA_INT8_GEMM_SCHEDULE", None)
            os.environ.pop("FF_CUDA_INT8_GEMM_CLUSTER", None)
        keys = [sc if cl == "1x1" else f"{sc} {cl}" for sc, cl in SCHEDULES]
        rates = " | ".join(f"{fz.get(key, float('nan')):8.1f}" for key in keys)
        print(f"  M {n} N {nn} K {k}: {bf:8.1f} | {i8:8.1f} | {rates} ({cos:.6f})")
        out.append({"m": n, "n": nn, "k": k, "bf16_tflops": bf, "int8_tops": i8, "fused_int8_tops": fz, "fused_cos": cos})
    return out


def print_breakdown(b):
    print(f"\nper-op breakdown, {b['config']}: SLA top0.1 (sage, {b['sla_impl']}) forward, ms summed over the layers (CUDA events)")
    columns = {"bf16": b["bf16_ms"], "int8 all": b["int8_ms"], "auto": b["auto_ms"], "fused all": b["fused_ms"]}
    columns.update(b.get("variants", {}))
    print(f"{'stage':<40}" + "".join(f"{c:>12}" for c in columns))
    for i, name in enumerate(b["stages"]):
        print(f"{name:<40}" + "".join(f"{ms[i]:>12.2f}" for ms in columns.values()))
    print(f"{'total':<40}" + "".join(f"{sum(ms):>12.2f}" for ms in columns.values()))
    print(f"auto runs as int8: {', '.join(b['auto_int8']) or 'nothing'}")
    print(f"fused runs as int8: {', '.join(b['fused_int8']) or 'nothing'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small-only", action="store_true")
    ap.add_argument("--focus", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    lib = load(args.lib)
    base = {"in_channels": 16, "patch_size": [1, 2, 2], "freq_dim": 256, "rope_theta": 10000, "eps": 1e-6}
    small = {**base, "in_channels": 8, "patch_size": [1, 1, 1], "dim": 384, "layers": 2, "heads": 6, "ffn_dim": 1536}
    wan13 = {**base, "dim": 1536, "layers": 30, "heads": 12, "ffn_dim": 8960}
    rows, b = run_config(lib, "tiny-shapes size, 2 layers, fp32 torch", small, (8, 9, 16, 16), 128, 16, torch.float32, 5, args.focus)
    breakdowns = [b]
    if not args.small_only:
        try:
            big_rows, b = run_config(
                lib, "Wan2.1-1.3B size, 32760 tokens", wan13, (16, 21, 60, 104), 512, 512, torch.bfloat16, 3, args.focus
            )
            rows += big_rows
            breakdowns.append(b)
        except Exception as e:
            print(f"Wan2.1-1.3B size failed: {e}")
    dev = torch.cuda.get_device_name()
    gemms = []
    if not args.small_only:
        try:
            gemms = gemm_rates(lib, 32760, 1536, 8960)
        except Exception as e:
            print(f"GEMM rates failed: {e}")
    out = {"device": dev, "torch": torch.__version__, "rows": rows, "breakdown": breakdowns, "gemms": gemms}
    Path(args.out).write_text(json.dumps(out, indent=1))
    for b in breakdowns:
        print_breakdown(b)
    print(f"\nDiT forward, device: {dev}")
    print(f"{'config':<40}{'impl':<36}{'tokens':>7}{'fwd ms':>10}{'cos':>10}{'50x2 s':>9}{'4x1 s':>8}")
    for r in rows:
        print(
            f"{r['config']:<40}{r['impl']:<36}{r['tokens']:>7}{r['forward_ms']:>10.2f}{r['cos_vs_torch']:>10.5f}"
            f"{r['baseline_50x2_s']:>9.2f}{r['turbo_4x1_s']:>8.3f}"
        )
    big = [r for r in rows if r["config"].startswith("Wan")]
    if big:  # the baseline profile is the flash row's 50-step figure, turbo the SLA (+ W8A8) rows' 4-step one
        torch_base = big[0]["baseline_50x2_s"]
        for r in big[1:]:
            print(
                f"{r['impl']}: 50 steps with CFG {torch_base / r['baseline_50x2_s']:.2f}x PyTorch's, "
                f"4 steps without CFG {torch_base / r['turbo_4x1_s']:.1f}x the PyTorch baseline"
            )


if __name__ == "__main__":
    main()
