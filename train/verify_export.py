#!/usr/bin/env python3
"""Generate from an exported model directory with the PyTorch reference and judge the clips.

    python3 train/verify_export.py models/tiny-shapes [--profile turbo|baseline] [--prompts 4]

Loads only the model directory (what the engine loads), so it checks the export itself: key
names, dtypes, config, vocabulary. Prints one JSON line per clip and a summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from analyze import judge  # noqa: E402
from data import suite  # noqa: E402
from export import load_export  # noqa: E402
from model import Tokenizer  # noqa: E402
from sample import Conditioner, euler, rcm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--profile", default="turbo", choices=["turbo", "baseline"])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg, text, teacher, student, vae = load_export(a.model_dir)
    with open(os.path.join(a.model_dir, "vocab.txt")) as f:
        tok = Tokenizer(f.read().split("\n")[:-1], cfg["text"]["max_tokens"])
    prof = cfg["profiles"][a.profile]
    v = cfg["video"]
    shape = (cfg["dit"]["in_channels"], 1 + (v["frames"] - 1) // 4, v["height"] // 8, v["width"] // 8)
    items = suite(a.prompts, seed=3)
    items = items[::6][: a.prompts // 2] + items[24:][: a.prompts - a.prompts // 2]
    ok = 0
    for i, it in enumerate(items):
        gen = torch.Generator().manual_seed(a.seed + i)
        noises = [torch.randn((1, *shape), generator=gen) for _ in range(prof["steps"] + 1)]
        cond = Conditioner(text, tok.batch([it["prompt"]]), tok.batch([""]))
        t0 = time.time()
        if prof["sampler"] == "rcm":
            z = rcm(student, noises, cond, prof["steps"], cfg["sampling"]["sigma_max"],
                    attention=prof["attention"], top_k=prof.get("slaTopK", 1.0))
        else:
            z = euler(teacher, noises[0], cond, prof["steps"], prof["guidanceScale"], cfg["sampling"]["shift"])
        t_denoise = time.time() - t0
        frames = vae.decode(z)[0].numpy()
        verdict = judge(frames)
        good = all(verdict[k] == it[k] for k in ("colour", "shape", "direction"))
        ok += good
        print(json.dumps({"prompt": it["prompt"], "verdict": verdict, "ok": good,
                          "denoise_s": round(t_denoise, 2), "decode_s": round(time.time() - t0 - t_denoise, 2)}))
    print(json.dumps({"profile": a.profile, "correct": ok, "n": len(items)}))


if __name__ == "__main__":
    main()
