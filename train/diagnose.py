"""Where does shape accuracy go? Scores, on the check suite, the renderer's own clips passed through
the VAE (the ceiling the decoder allows) and the teacher's 50-step samples at several guidance
scales, and saves the clips (every 4th frame) so that src/eval's analyzer can judge them too.

    python3 train/diagnose.py --out DIR [--guidance 5,3,2] [--shift 3]

Writes DIR/diag_<name>.npz (uint8 frames [n, F', H, W, 3], with the suite's attributes) and
prints one JSON line per variant with train/analyze.py's scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from analyze import score  # noqa: E402
from data import eval_clip, suite  # noqa: E402
from train import DEV, Run, amp  # noqa: E402
from vae import to_unit  # noqa: E402


def save(out: str | None, name: str, items: list[dict], clips: list[np.ndarray]) -> None:
    if out is None:
        return
    frames = np.stack([c[::4] for c in clips])
    meta = {k: np.asarray([it[k] for it in items]) for k in ("colour", "shape", "direction", "background")}
    np.savez_compressed(os.path.join(out, f"diag_{name}.npz"), frames=frames,
                        heldOut=np.asarray([it["heldOut"] for it in items]), **meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--guidance", default="5,3,2")
    ap.add_argument("--shift", type=float, default=None)
    ap.add_argument("--ckpt", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints"))
    ap.add_argument("--seen", type=int, default=72)
    ap.add_argument("--no-save", action="store_true", help="print the scores only")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = None if args.no_save else args.out
    run = Run(argparse.Namespace(smoke=False, ckpt=args.ckpt, export_dir=None))
    items = suite(args.seen, seed=1)

    vae, _ = run.vae()
    sc = run.cfg["vae"]["scaling"]
    truth = [eval_clip(it, 100 + i) for i, it in enumerate(items)]
    recon = []
    with torch.no_grad(), amp():
        for b in range(0, len(truth), 16):
            x = torch.from_numpy(np.stack(truth[b : b + 16])).to(DEV)
            mu, _ = vae.encoder(to_unit(x))
            recon += list(vae.decoder.decode((mu.float() - sc["mean"]) / sc["std"]).cpu().numpy())
    for name, clips in (("truth", truth), ("recon", recon)):
        print(json.dumps({"variant": name, **score(items, clips)}), flush=True)
        save(out, name, items, clips)

    s = run.cfg["sampling"]
    if args.shift is not None:
        s["shift"] = args.shift
    for g in (float(v) for v in args.guidance.split(",")):
        s["guidance_scale"] = g  # the baseline of Run.generate, at this scale
        clips = run.generate(items, "baseline")
        print(json.dumps({"variant": f"baseline_g{g:g}_s{s['shift']:g}", **score(items, clips)}), flush=True)
        save(out, f"g{g:g}", items, clips)


if __name__ == "__main__":
    main()
