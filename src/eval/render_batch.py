#!/usr/bin/env python3
"""Renders many tiny-shapes clips in one process with train/render.py's `render_clip`.

The analyzer's tests need hundreds of clips; starting Python once per clip would cost more than
analysing them. This driver only batches: every pixel comes from the one renderer.

stdin: a JSON array of {"seed", "colour"?, "shape"?, "direction"?, "background"?, "width"?,
"height"?, "frames"?, "degrade"?} (omitted attributes are drawn from the seed, as on render.py's
CLI). "degrade" = {"blurSigma", "noiseSigma", "colourShift": [r, g, b], "smearFrames", "seed"}
applies what a generator does to a clip and a renderer does not (see `degrade`).
argv[1]: the file that receives every clip's raw RGB bytes (frames x height x width x 3), one
after another in input order. stdout: a JSON array of render.py's metadata per clip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))

from render import render_clip  # noqa: E402

KEYS = ("colour", "shape", "direction", "background", "width", "height", "frames")


def _blur_axis(x: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma * sigma))
    k /= k.sum()
    moved = np.moveaxis(x, axis, 0)
    padded = np.concatenate([moved[:1].repeat(radius, 0), moved, moved[-1:].repeat(radius, 0)])
    n = moved.shape[0]
    out = np.zeros_like(moved)
    for i, w in enumerate(k):
        out += np.float32(w) * padded[i : i + n]
    return np.moveaxis(out, 0, axis)


def degrade(frames: np.ndarray, d: dict) -> np.ndarray:
    """Motion smear (each frame averages `smearFrames` consecutive ones), Gaussian blur of the
    edges, a constant colour shift and per-pixel Gaussian noise, in that order."""
    x = frames.astype(np.float32)
    smear = int(d.get("smearFrames", 1))
    if smear > 1:
        count = x.shape[0]
        firsts = [max(0, t - (smear - 1) // 2) for t in range(count)]
        x = np.stack([x[f : min(count, f + smear)].mean(axis=0) for f in firsts])
    sigma = float(d.get("blurSigma", 0))
    if sigma > 0:
        x = _blur_axis(_blur_axis(x, sigma, 1), sigma, 2)
    x += np.asarray(d.get("colourShift", [0, 0, 0]), dtype=np.float32)
    rng = np.random.default_rng(int(d.get("seed", 0)))
    x += np.float32(d.get("noiseSigma", 0)) * rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: render_batch.py OUT.rgb < specs.json", file=sys.stderr)
        return 2
    specs = json.load(sys.stdin)
    metas = []
    with open(sys.argv[1], "wb") as out:
        for spec in specs:
            kwargs = {k: spec[k] for k in KEYS if spec.get(k) is not None}
            frames, _, attrs = render_clip(int(spec["seed"]), **kwargs)
            if spec.get("degrade"):
                frames = degrade(frames, spec["degrade"])
            out.write(frames.tobytes())
            metas.append(attrs)
    json.dump(metas, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
