"""Tests of the renderer (numpy only): python3 -m unittest discover -s train -p 'test_*.py'"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from render import (  # noqa: E402
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    HELD_OUT,
    SHAPES,
    VOCAB,
    render_clip,
    render_training_clip,
    training_combos,
)

HERE = os.path.dirname(os.path.abspath(__file__))


class RenderTest(unittest.TestCase):
    def test_same_seed_same_pixels_and_other_seed_other_pixels(self):
        a, _, _ = render_clip(11, "red", "circle", "left", "black")
        b, _, _ = render_clip(11, "red", "circle", "left", "black")
        c, _, _ = render_clip(12, "red", "circle", "left", "black")
        self.assertTrue(np.array_equal(a, b))
        self.assertFalse(np.array_equal(a, c))

    def test_object_has_exact_colour_stays_inside_and_moves_in_its_direction(self):
        for seed in range(40):
            for d in DIRECTIONS:
                shape = SHAPES[seed % 3]
                frames, text, attrs = render_clip(seed, "green", shape, d, "navy")
                self.assertEqual(frames.shape, (33, 128, 128, 3))
                self.assertEqual(text, f"a green {shape} moving {d} on a navy background")
                mask = (frames == np.array(COLOURS["green"], np.uint8)).all(-1)
                others = ~mask & ~(frames == np.array(BACKGROUNDS["navy"], np.uint8)).all(-1)
                self.assertFalse(others.any(), "only two colours in a clip")
                counts = mask.reshape(33, -1).sum(1)
                self.assertGreater(counts.min(), 0.9 * counts.max(), "object never leaves the frame")
                ys, xs = np.nonzero(mask[0])
                ye, xe = np.nonzero(mask[-1])
                dx, dy = xe.mean() - xs.mean(), ye.mean() - ys.mean()
                step = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[d]
                self.assertGreater(dx * step[0] + dy * step[1], 0.35 * 128)

    def test_training_clips_never_show_held_out_triples(self):
        held = set(HELD_OUT)
        self.assertEqual(len(training_combos()), 8 * 3 * 4 * 3 - len(held) * 3)
        for seed in range(300):
            _, _, attrs = render_training_clip(seed, 32, 32, 5)
            self.assertNotIn((attrs["colour"], attrs["shape"], attrs["direction"]), held)

    def test_cli_writes_raw_rgb_and_metadata(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "clip.rgb")
            res = subprocess.run(
                [sys.executable, os.path.join(HERE, "render.py"), "--seed", "5", "--colour", "pink",
                 "--shape", "square", "--direction", "up", "--background", "gray", "--width", "64",
                 "--height", "48", "--frames", "9", "--out", out],
                capture_output=True, text=True, check=True)
            meta = json.loads(res.stdout)
            raw = np.fromfile(out, dtype=np.uint8).reshape(9, 48, 64, 3)
            frames, _, _ = render_clip(5, "pink", "square", "up", "gray", 64, 48, 9)
            self.assertTrue(np.array_equal(raw, frames))
            self.assertEqual(meta["caption"], "a pink square moving up on a gray background")
            self.assertEqual(len(meta["centers"]), 9)
            bad = subprocess.run([sys.executable, os.path.join(HERE, "render.py"), "--colour", "teal"],
                                 capture_output=True, text=True)
            self.assertNotEqual(bad.returncode, 0)

    def test_vocab_file_matches_the_renderer(self):
        with open(os.path.join(HERE, "..", "models", "tiny-shapes", "vocab.txt")) as f:
            self.assertEqual(f.read().split("\n")[:-1], list(VOCAB))


if __name__ == "__main__":
    unittest.main()
