"""The DiT forward on the CUDA backend against train/model.py's DiT in PyTorch eager.

One random-weight model of the family (train/model.py's DiT, its own initialisation, proj_l drawn
N(0, 0.02) so the SLA linear branch does work) runs twice on the same inputs: PyTorch eager
(SDPA attention) and our blocks + head (native/src/kernels/cuda/dit_forward.cu through
libframefleet_cuda_capi.so), with patchify, patch_embed, the conditioning and unpatchify done by
PyTorch in both. One forward is timed (CUDA events, median); the profiles follow from it as
TurboDiffusion counts the denoising stage: baseline = 50 steps x 2 passes (CFG), turbo = 4 steps x
1 pass. Cross-attention sees every text token (no padding).

usage: python3 bench/gpu/bench_dit.py --lib PATH.so --out dit.json [--small-only]
"""

import argparse
import ctypes
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_timing import time_ms  # noqa: E402
from model import DiT  # noqa: E402

MATRICES = {0, 2, 4, 6, 10, 13, 15, 17, 19, 23, 25}


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
        self.scratch_bytes = lib.ff_cuda_dit_scratch_bytes(self.dims)
        self.scratch = torch.empty(self.scratch_bytes, dtype=torch.uint8, device="cuda")
        self.out = torch.empty(n, self.p, dtype=torch.bfloat16, device="cuda")

    @torch.no_grad()
    def forward(self, x, t, ctx, attention, top_k=0.1):
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
            ctypes.c_void_p(torch.cuda.current_stream().cuda_stream),
        )  # fmt: skip
        if rc != 0:
            raise RuntimeError(self.lib.ff_cuda_last_error().decode())
        return m.unpatchify(self.out[None].to(x.dtype), self.grid)


def load(path):
    lib = ctypes.CDLL(path)
    lib.ff_cuda_last_error.restype = ctypes.c_char_p
    lib.ff_cuda_dit_scratch_bytes.restype = ctypes.c_size_t
    lib.ff_cuda_dit_scratch_bytes.argtypes = [ctypes.c_void_p]
    vp = ctypes.c_void_p
    lib.ff_cuda_dit_forward.argtypes = [
        vp, ctypes.c_float, ctypes.c_double, ctypes.c_int, ctypes.c_float, vp, vp, vp, vp, vp, vp, vp, vp, vp,
        ctypes.c_size_t, vp,
    ]  # fmt: skip
    return lib


def cos(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    if not torch.isfinite(a).all():
        return float("nan")
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def run_config(lib, name, cfg, latent, text_dim, ctx_tokens, dtype, reps):
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
        for label, att in (("ours flash bf16", 0), ("ours sage int8", 1), ("ours SLA top0.1 (sage)", 2)):
            v = ours.forward(x, t, ctx, att)
            ms = time_ms(lambda att=att: ours.forward(x, t, ctx, att), 1, reps)[0]
            rows.append({"config": name, "impl": label, "forward_ms": ms, "cos_vs_torch": cos(v, ref)})
    for r in rows:
        r["tokens"] = ours.n
        r["baseline_50x2_s"] = r["forward_ms"] * 100 / 1e3
        r["turbo_4x1_s"] = r["forward_ms"] * 4 / 1e3
    del ours, model
    torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small-only", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    lib = load(args.lib)
    base = {"in_channels": 16, "patch_size": [1, 2, 2], "freq_dim": 256, "rope_theta": 10000, "eps": 1e-6}
    small = {**base, "in_channels": 8, "patch_size": [1, 1, 1], "dim": 384, "layers": 2, "heads": 6, "ffn_dim": 1536}
    wan13 = {**base, "dim": 1536, "layers": 30, "heads": 12, "ffn_dim": 8960}
    rows = run_config(lib, "tiny-shapes size, 2 layers, fp32 torch", small, (8, 9, 16, 16), 128, 16, torch.float32, 5)
    if not args.small_only:
        try:
            rows += run_config(lib, "Wan2.1-1.3B size, 32760 tokens", wan13, (16, 21, 60, 104), 512, 512, torch.bfloat16, 3)
        except Exception as e:
            print(f"Wan2.1-1.3B size failed: {e}")
    dev = torch.cuda.get_device_name()
    Path(args.out).write_text(json.dumps({"device": dev, "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"\nDiT forward, device: {dev}")
    print(f"{'config':<40}{'impl':<30}{'tokens':>7}{'fwd ms':>10}{'cos':>10}{'50x2 s':>9}{'4x1 s':>8}")
    for r in rows:
        print(
            f"{r['config']:<40}{r['impl']:<30}{r['tokens']:>7}{r['forward_ms']:>10.2f}{r['cos_vs_torch']:>10.5f}"
            f"{r['baseline_50x2_s']:>9.2f}{r['turbo_4x1_s']:>8.3f}"
        )
    big = [r for r in rows if r["config"].startswith("Wan")]
    if big:
        torch_base = big[0]["baseline_50x2_s"]
        for r in big[1:]:
            print(
                f"{r['impl']}: baseline profile {torch_base / r['baseline_50x2_s']:.2f}x PyTorch, "
                f"turbo profile {torch_base / r['turbo_4x1_s']:.1f}x the PyTorch baseline"
            )


if __name__ == "__main__":
    main()
