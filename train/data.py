"""Training data: clips from train/render.py rendered in parallel into shared memory, captions,
and the prompt suites used for checks. Seeds of training clips start at TRAIN_SEED_BASE so that
evaluation seeds (small integers) never coincide with them."""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import shared_memory

import numpy as np

from render import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    SHAPES,
    caption,
    render_clip,
    render_training_clip,
    training_combos,
)

TRAIN_SEED_BASE = 1_000_000


def _render_into(args):
    shm_name, shape, start, seeds = args
    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        buf = np.ndarray(shape, dtype=np.uint8, buffer=shm.buf)
        captions = []
        for i, seed in enumerate(seeds):
            frames, text, _ = render_training_clip(int(seed), shape[3], shape[2], shape[1])
            buf[start + i] = frames
            captions.append(text)
        return start, captions
    finally:
        shm.close()


class ClipRenderer:
    """Renders batches of training clips with a process pool; frames land in one shared array."""

    def __init__(self, frames=33, height=128, width=128, capacity=1024, workers=None):
        self.shape = (capacity, frames, height, width, 3)
        self.shm = shared_memory.SharedMemory(create=True, size=int(np.prod(self.shape)))
        self.array = np.ndarray(self.shape, dtype=np.uint8, buffer=self.shm.buf)
        self.pool = mp.get_context("fork").Pool(workers or max(1, (os.cpu_count() or 2) - 1))

    def render(self, seeds) -> tuple[np.ndarray, list[str]]:
        """Frames [n, F, H, W, 3] (a view into shared memory, valid until the next call)."""
        n = len(seeds)
        assert n <= self.shape[0]
        per = max(1, (n + 4 * self.pool._processes - 1) // (4 * self.pool._processes))
        jobs = [(self.shm.name, self.shape, s, seeds[s : s + per]) for s in range(0, n, per)]
        captions: list[str] = [""] * n
        for start, caps in self.pool.imap_unordered(_render_into, jobs):
            captions[start : start + len(caps)] = caps
        return self.array[:n], captions

    def close(self):
        self.pool.close()
        self.pool.join()
        self.shm.close()
        self.shm.unlink()


def suite(n_seen: int, seed: int = 0) -> list[dict]:
    """Check prompts: every held-out triple on every background, plus n_seen seen combinations."""
    rng = np.random.default_rng(seed)
    items = []
    for c, s, d in HELD_OUT:
        for b in BACKGROUNDS:
            items.append({"colour": c, "shape": s, "direction": d, "background": b, "heldOut": True})
    combos = training_combos()
    for i in rng.choice(len(combos), size=n_seen, replace=False):
        c, s, d, b = combos[i]
        items.append({"colour": c, "shape": s, "direction": d, "background": b, "heldOut": False})
    for it in items:
        it["prompt"] = caption(it["colour"], it["shape"], it["direction"], it["background"])
    return items


def eval_clip(item: dict, seed: int, frames=33, height=128, width=128):
    """A rendered clip of a suite item (used to check the analyzer on real data)."""
    return render_clip(seed, item["colour"], item["shape"], item["direction"], item["background"],
                       width, height, frames)[0]


__all__ = ["COLOURS", "SHAPES", "ClipRenderer", "suite", "eval_clip", "TRAIN_SEED_BASE"]
