#!/usr/bin/env python3
"""The one renderer of tiny-shapes clips (docs/DATASET.md): numpy only, seeded, deterministic.

Training data, the evaluator's self-test clips and the fixtures all come from `render_clip`, so
the same seed and attributes give the same pixels everywhere.

Command line (used by the TypeScript tests of src/eval):

    python3 train/render.py --seed 7 [--colour red] [--shape circle] [--direction left]
        [--background black] [--width 128] [--height 128] [--frames 33]
        [--out clip.rgb | clip.npy] [--meta clip.json]

  * `--out FILE.rgb` writes raw uint8 RGB bytes, frame-major: frames x height x width x 3;
    `--out FILE.npy` writes the same array as .npy. Without --out no pixels are written.
  * The clip's metadata is printed to stdout as one JSON object (and written to --meta when
    given): seed, caption, colour, shape, direction, background, their RGB values, size (px),
    travel (px), centers ([x, y] per frame, pixel units, origin top-left), width, height,
    frames, fps, heldOut.
  * An attribute left out is drawn from the seed (any combination, held-out ones included).
  * `python3 train/render.py --vocab` prints {"vocab", "colours", "shapes", "directions",
    "backgrounds", "heldOut"} as JSON and exits.

Geometry: the object's size s (circle diameter, square side, triangle base and height) is
20%-40% of the shorter side; it travels 0.4-0.9 of the frame extent along its direction
(widths for left/right, heights for up/down; capped at extent - size, so a large object travels
less) at constant speed, from a start chosen so that it
stays fully inside the frame for the whole clip. A pixel belongs to the object when its centre
(x + 0.5, y + 0.5) is inside the shape: edges are hard, colours exact.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 220, 50),
    "orange": (245, 140, 30),
    "purple": (150, 60, 200),
    "white": (245, 245, 245),
    "pink": (250, 130, 190),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "gray": (110, 110, 110),
    "navy": (20, 30, 80),
}
# (colour, shape, direction) triples that never appear in training, on any background.
HELD_OUT: tuple[tuple[str, str, str], ...] = (
    ("red", "triangle", "left"),
    ("green", "circle", "up"),
    ("blue", "square", "right"),
    ("yellow", "triangle", "down"),
    ("orange", "circle", "left"),
    ("purple", "square", "up"),
    ("white", "triangle", "right"),
    ("pink", "circle", "down"),
)
GRAMMAR_WORDS = ("a", "moving", "on", "background")
# vocab.txt: line i is token id i.
VOCAB: tuple[str, ...] = (
    "<pad>",
    "<bos>",
    *GRAMMAR_WORDS,
    *COLOURS,
    *SHAPES,
    *DIRECTIONS,
    *BACKGROUNDS,
)
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FRAMES, FPS = 128, 128, 33, 16
# unit motion per direction in image coordinates (y grows downwards)
_STEP = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def caption(colour: str, shape: str, direction: str, background: str) -> str:
    return f"a {colour} {shape} moving {direction} on a {background} background"


def is_held_out(colour: str, shape: str, direction: str) -> bool:
    return (colour, shape, direction) in HELD_OUT


def training_combos() -> list[tuple[str, str, str, str]]:
    """Every (colour, shape, direction, background) the training data may show."""
    return [
        (c, s, d, b)
        for c in COLOURS
        for s in SHAPES
        for d in DIRECTIONS
        for b in BACKGROUNDS
        if not is_held_out(c, s, d)
    ]


def _check(name: str, value: str | None, allowed) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def _shape_mask(shape: str, cx, cy, size: float, xs, ys):
    """Boolean coverage of pixel centres; cx, cy broadcast against xs [1,1,W], ys [1,H,1]."""
    half = size / 2.0
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    # isosceles triangle, apex up: apex (cx, cy - half), base from (cx +- half, cy + half)
    inside_rows = (dy >= -half) & (dy <= half)
    return inside_rows & (np.abs(dx) <= (dy + half) * 0.5)


def render_clip(
    seed: int,
    colour: str | None = None,
    shape: str | None = None,
    direction: str | None = None,
    background: str | None = None,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    frames: int = DEFAULT_FRAMES,
) -> tuple[np.ndarray, str, dict]:
    """Render one clip: (frames uint8 [F, H, W, 3], caption, attributes)."""
    _check("colour", colour, COLOURS)
    _check("shape", shape, SHAPES)
    _check("direction", direction, DIRECTIONS)
    _check("background", background, BACKGROUNDS)
    if width < 16 or height < 16 or frames < 1:
        raise ValueError(f"clip too small: {width}x{height}, {frames} frames")
    rng = np.random.default_rng(seed)
    # The draws happen in a fixed order whatever is given, so one seed means one geometry.
    picks = (
        rng.integers(len(COLOURS)),
        rng.integers(len(SHAPES)),
        rng.integers(len(DIRECTIONS)),
        rng.integers(len(BACKGROUNDS)),
    )
    size_frac, travel_frac, u_along, u_across = rng.random(4)
    colour = colour or list(COLOURS)[picks[0]]
    shape = shape or SHAPES[picks[1]]
    direction = direction or DIRECTIONS[picks[2]]
    background = background or list(BACKGROUNDS)[picks[3]]

    short = min(width, height)
    size = (0.2 + 0.2 * size_frac) * short
    sx, sy = _STEP[direction]
    extent = width if sx != 0 else height
    # 0.4-0.9 of the extent, but never more than the room the object leaves (size + travel <= extent)
    travel_max = min(0.9 * extent, extent - size)
    travel = 0.4 * extent + travel_frac * (travel_max - 0.4 * extent)
    half = size / 2.0
    # Keep the whole path inside: along the motion axis the start leaves room for the travel.
    along_len, across_len = (width, height) if sx != 0 else (height, width)
    along_room = max(along_len - size - travel, 0.0)
    along_start = half + u_along * along_room
    across = half + u_across * (across_len - size)
    if (sx if sx != 0 else sy) < 0:
        along_start = along_len - along_start
    if sx != 0:
        x0, y0 = along_start, across
    else:
        x0, y0 = across, along_start
    t = np.arange(frames, dtype=np.float64) / max(frames - 1, 1)
    cx = x0 + sx * travel * t
    cy = y0 + sy * travel * t

    xs = (np.arange(width, dtype=np.float64) + 0.5)[None, None, :]
    ys = (np.arange(height, dtype=np.float64) + 0.5)[None, :, None]
    mask = _shape_mask(shape, cx[:, None, None], cy[:, None, None], size, xs, ys)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    out[...] = np.asarray(BACKGROUNDS[background], dtype=np.uint8)
    out[mask] = np.asarray(COLOURS[colour], dtype=np.uint8)

    text = caption(colour, shape, direction, background)
    attrs = {
        "seed": int(seed),
        "caption": text,
        "colour": colour,
        "shape": shape,
        "direction": direction,
        "background": background,
        "colourRgb": list(COLOURS[colour]),
        "backgroundRgb": list(BACKGROUNDS[background]),
        "size": float(size),
        "travel": float(travel),
        "centers": [[float(a), float(b)] for a, b in zip(cx, cy)],
        "width": width,
        "height": height,
        "frames": frames,
        "fps": FPS,
        "heldOut": is_held_out(colour, shape, direction),
    }
    return out, text, attrs


def render_training_clip(seed: int, width=DEFAULT_WIDTH, height=DEFAULT_HEIGHT, frames=DEFAULT_FRAMES):
    """A training clip: the combination is drawn uniformly from those that are not held out."""
    combos = training_combos()
    colour, shape, direction, background = combos[
        np.random.default_rng([seed, 0x7A11]).integers(len(combos))
    ]
    return render_clip(seed, colour, shape, direction, background, width, height, frames)


def vocab_info() -> dict:
    return {
        "vocab": list(VOCAB),
        "colours": COLOURS,
        "shapes": list(SHAPES),
        "directions": list(DIRECTIONS),
        "backgrounds": BACKGROUNDS,
        "heldOut": [list(h) for h in HELD_OUT],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render one tiny-shapes clip (docs/DATASET.md).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--colour", choices=list(COLOURS))
    p.add_argument("--shape", choices=SHAPES)
    p.add_argument("--direction", choices=DIRECTIONS)
    p.add_argument("--background", choices=list(BACKGROUNDS))
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    p.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    p.add_argument("--out", help="FILE.rgb (raw T x H x W x 3 bytes) or FILE.npy")
    p.add_argument("--meta", help="also write the JSON metadata to this file")
    p.add_argument("--vocab", action="store_true", help="print the scene vocabulary and exit")
    a = p.parse_args(argv)
    if a.vocab:
        print(json.dumps(vocab_info()))
        return 0
    try:
        frames, _, attrs = render_clip(
            a.seed, a.colour, a.shape, a.direction, a.background, a.width, a.height, a.frames
        )
    except ValueError as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 2
    if a.out:
        if a.out.endswith(".npy"):
            np.save(a.out, frames)
        else:
            with open(a.out, "wb") as f:
                f.write(frames.tobytes())
    text = json.dumps(attrs)
    if a.meta:
        with open(a.meta, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
