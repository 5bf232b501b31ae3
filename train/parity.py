#!/usr/bin/env python3
"""Write the parity fixtures the native engine is checked against (native/tests/fixtures/parity/).

A small random model of the family (a complete model directory: config.json, vocab.txt and the
three safetensors) plus cases.safetensors holding inputs, intermediates and expected outputs of
the text encoder, one DiT block, whole DiT forwards (dense and SLA), a VAE decode and two short
samplers with given noise. Expected values are computed in float64 and stored as F32.

    python3 train/parity.py [--out native/tests/fixtures/parity]
"""

from __future__ import annotations

import argparse
import json
import math
import os

import torch
from safetensors.torch import save_file

from model import DiT, TextEncoder, Tokenizer, VAEDecoder, prefixed_state_dict

VOCAB = ["<pad>", "<bos>", "a", "red", "green", "circle", "square", "moving", "left", "right"]
CONFIG = {
    "format": "framefleet-dit-v1",
    "name": "parity-tiny",
    "text": {"vocab_size": len(VOCAB), "max_tokens": 8, "dim": 32, "layers": 2, "heads": 2,
             "ffn_dim": 64},
    "dit": {"in_channels": 4, "patch_size": [1, 1, 1], "dim": 40, "layers": 2, "heads": 2,
            "ffn_dim": 96, "freq_dim": 32, "rope_theta": 10000, "eps": 1e-6},
    "vae": {"latent_channels": 4, "channels": [16, 8, 8, 4],
            "temporal_upsample": [True, True, False], "scaling": {"mean": 0.1, "std": 1.5}},
    "video": {"width": 64, "height": 64, "frames": 9, "fps": 16, "spatial_multiple": 8,
              "max_width": 128, "max_height": 128, "max_frames": 33},
    "sampling": {"steps": 3, "guidance_scale": 3.0, "shift": 3.0, "sigma_max": 80.0},
    "profiles": {
        "baseline": {"weights": "dit", "sampler": "euler", "steps": 3, "guidanceScale": 3.0,
                     "attention": "dense", "linear": "fp32", "teaCache": 0},
        "turbo": {"weights": "dit", "sampler": "rcm", "steps": 2, "guidanceScale": 1.0,
                  "attention": "sla", "slaTopK": 0.5, "linear": "fp32", "teaCache": 0},
    },
    "teacache": {"coefficients": [0.5, 1.0, 0.0]},
}
# latent [C, T, h, w] = [4, 3, 8, 8] -> 192 tokens, three SLA blocks of 64
LATENT = (4, 3, 8, 8)
PROMPT = "a red circle moving left"


def randomise(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial weights everywhere: norms and modulations away from their neutral values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or (
                "norm" in name and name.endswith("weight")
            ):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            else:
                fan_in = p.shape[1] if p.dim() > 1 else p.shape[0]
                if p.dim() == 5:
                    fan_in = p.shape[1] * p.shape[2] * p.shape[3] * p.shape[4]
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) / math.sqrt(fan_in))


def shifted(u, s):
    return s * u / (1 + (s - 1) * u)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "native", "tests", "fixtures", "parity"))
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    cfg = CONFIG
    text = TextEncoder(cfg["text"]).double()
    dit = DiT(cfg["dit"], cfg["text"]["dim"]).double()
    vae = VAEDecoder(cfg["vae"]).double()
    for m in (text, dit, vae):
        randomise(m, gen)

    def f32(t):
        return t.detach().float().contiguous()

    save_file({k: f32(v) for k, v in prefixed_state_dict(text, "text").items()},
              os.path.join(out, "text_encoder.safetensors"))
    save_file({k: f32(v) for k, v in prefixed_state_dict(dit, "dit").items()},
              os.path.join(out, "dit.safetensors"))
    save_file({k: f32(v) for k, v in prefixed_state_dict(vae, "vae").items()},
              os.path.join(out, "vae_decoder.safetensors"))
    # Use the stored (F32-rounded) weights for the reference computation.
    for m in (text, dit, vae):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.float().double())
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")

    tok = Tokenizer(VOCAB, cfg["text"]["max_tokens"])
    cases: dict[str, torch.Tensor] = {}

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float32).double()

    with torch.no_grad():
        ids = tok.batch([PROMPT])
        ctx, mask = text(ids)
        ids_u = tok.batch([""])
        ctx_u, mask_u = text(ids_u)
        cases["text.ids"] = ids[0].float()
        cases["text.ctx"] = ctx[0]
        cases["text.uncond_ids"] = ids_u[0].float()
        cases["text.uncond_ctx"] = ctx_u[0]

        x = rnd(1, *LATENT)
        t = torch.tensor([0.73], dtype=torch.float64)
        cases["dit.x"] = x[0]
        cases["dit.t"] = t
        grid = dit.grid(x)
        rope = dit.rope(grid, x.device)
        tokens = dit.patch_embed(dit.patchify(x))
        e, m, c = dit.conditioning(t, ctx)
        cases["dit.tokens"] = tokens[0]
        cases["dit.e"] = e[0]
        cases["dit.m"] = m[0]
        cases["dit.c"] = c[0]
        after0 = dit.blocks[0](tokens, m, c, mask, rope)
        cases["dit.block0.in"] = tokens[0]
        cases["dit.block0.first_input"] = dit.blocks[0].modulated_input(tokens, m)[0]
        cases["dit.block0.out"] = after0[0]
        cases["dit.v"] = dit(x, t, ctx, mask)[0]
        cases["dit.v_uncond"] = dit(x, t, ctx_u, mask_u)[0]
        cases["dit.v_sla"] = dit(x, t, ctx, mask, attention="sla", top_k=0.5)[0]
        cases["dit.v_sla_topk1"] = dit(x, t, ctx, mask, attention="sla", top_k=1.0)[0]

        z = rnd(1, 4, 3, 4, 4)
        cases["vae.z"] = z[0]
        s = cfg["vae"]["scaling"]
        y = vae(z * s["std"] + s["mean"])
        cases["vae.out"] = y[0]  # before the uint8 mapping, [3, 9, 32, 32]
        cases["vae.rgb"] = vae.decode(z)[0].float()  # [9, 32, 32, 3], values 0..255

        # Euler with CFG: 3 steps, g = 3, shift 3, from the given noise
        steps, g, shift = 3, 3.0, 3.0
        noise = rnd(1, *LATENT)
        cases["euler.noise"] = noise[0]
        xs = noise.clone()
        ts = [shifted(1 - i / steps, shift) for i in range(steps + 1)]
        for i in range(steps):
            tt = torch.tensor([ts[i]], dtype=torch.float64)
            v = dit(xs, tt, ctx_u, mask_u) + g * (dit(xs, tt, ctx, mask) - dit(xs, tt, ctx_u, mask_u))
            xs = xs + (ts[i + 1] - ts[i]) * v
        cases["euler.times"] = torch.tensor(ts, dtype=torch.float64)
        cases["euler.out"] = xs[0]

        # rcm: 2 steps, sigma_max 80, given noises (initial, then one fresh noise per step)
        angles = [math.atan(80.0), 1.5, 1.4, 1.0][:2]
        rt = [math.sin(a) / (math.sin(a) + math.cos(a)) for a in angles] + [0.0]
        n0, n1, n2 = rnd(1, *LATENT), rnd(1, *LATENT), rnd(1, *LATENT)
        cases["rcm.noise0"], cases["rcm.noise1"], cases["rcm.noise2"] = n0[0], n1[0], n2[0]
        xs = n0 * rt[0]
        fresh = [n1, n2]
        for i in range(2):
            v = dit(xs, torch.tensor([rt[i]], dtype=torch.float64), ctx, mask)
            x0 = xs - rt[i] * v
            xs = (1 - rt[i + 1]) * x0 + rt[i + 1] * fresh[i]
        cases["rcm.times"] = torch.tensor(rt, dtype=torch.float64)
        cases["rcm.out"] = x0[0]

    save_file({k: f32(v) for k, v in cases.items()}, os.path.join(out, "cases.safetensors"))
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {len(cases)} cases to {out} ({total} bytes)")


if __name__ == "__main__":
    main()
