"""A quick numpy judge of generated clips, used during training to decide whether a checkpoint is
good enough to export. The project's evaluator (src/eval) is the authority; this one only needs
to agree with it on clear cases."""

from __future__ import annotations

import numpy as np

from render import BACKGROUNDS, COLOURS


def _nearest(rgb, table: dict) -> str:
    names = list(table)
    ref = np.asarray([table[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(((ref - rgb[None]) ** 2).sum(1)))]


def judge(frames: np.ndarray) -> dict:
    """frames uint8 [F, H, W, 3] -> {colour, shape, direction, background}."""
    f = frames.astype(np.float64)
    border = np.concatenate([f[:, 0], f[:, -1], f[:, :, 0], f[:, :, -1]], axis=1).reshape(-1, 3)
    bg = np.median(border, axis=0)
    dist = np.sqrt(((f - bg) ** 2).sum(-1))  # [F, H, W]
    mask = dist > 60
    out = {"background": _nearest(bg, BACKGROUNDS), "colour": None, "shape": None, "direction": None}
    if mask.sum() < 20:
        return out
    out["colour"] = _nearest(np.median(f[mask], axis=0), COLOURS)
    ys, xs = np.mgrid[0 : f.shape[1], 0 : f.shape[2]]
    cents = []
    fills = []
    for m in mask:
        if m.sum() < 10:
            continue
        cents.append((xs[m].mean(), ys[m].mean()))
        yy, xx = ys[m], xs[m]
        box = (yy.max() - yy.min() + 1) * (xx.max() - xx.min() + 1)
        fills.append(m.sum() / box)
    if len(cents) >= 2:
        n = max(1, len(cents) // 4)
        a = np.mean(cents[:n], axis=0)
        b = np.mean(cents[-n:], axis=0)
        dx, dy = b - a
        if abs(dx) >= abs(dy):
            out["direction"] = "right" if dx > 0 else "left"
        else:
            out["direction"] = "down" if dy > 0 else "up"
    if fills:
        fill = float(np.median(fills))
        out["shape"] = "square" if fill > 0.9 else ("circle" if fill > 0.64 else "triangle")
    return out


def score(items: list[dict], clips: list[np.ndarray]) -> dict:
    """Accuracy per attribute and overall (all three right), split seen / held-out."""
    res = {}
    for split, held in (("seen", False), ("heldOut", True)):
        sel = [(it, c) for it, c in zip(items, clips) if it["heldOut"] == held]
        if not sel:
            continue
        acc = {"colour": 0, "shape": 0, "direction": 0, "overall": 0}
        for it, clip in sel:
            v = judge(clip)
            ok = [v[k] == it[k] for k in ("colour", "shape", "direction")]
            for k, o in zip(("colour", "shape", "direction"), ok):
                acc[k] += o
            acc["overall"] += all(ok)
        res[split] = {k: v / len(sel) for k, v in acc.items()} | {"n": len(sel)}
    return res
