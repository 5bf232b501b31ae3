// A side-by-side sheet for people: one row per clip of the suite, and in each row every profile's
// version of that clip (the same prompt and seed) as a few evenly spaced frames, so that a reader
// can check the prompt in each clip and compare the profiles at a glance.
import { type Frames, frameView, pickFrames } from "../pipeline/contact-sheet.ts";
import { encodePng } from "../pipeline/png.ts";

const GAP = 4;
/** Wider gap between one profile's frames and the next profile's. */
const PROFILE_GAP = 16;
const GAP_COLOUR = 64;
/** Frames shown per clip: the 8 of the per-clip contact sheets. */
const TILES = 8;

/**
 * rows[r][p] is clip r under profile p; every clip must have the same size. The PNG is
 * `rows x (profiles x 8)` tiles at the clips' own resolution.
 */
export function compareSheet(rows: Frames[][]): Buffer {
  const first = rows[0]?.[0];
  if (!first) throw new Error("compareSheet: no clips");
  const profiles = rows[0]?.length ?? 0;
  const { width, height } = first;
  for (const row of rows) {
    if (row.length !== profiles) throw new Error("compareSheet: every row needs one clip per profile");
    for (const clip of row) {
      if (clip.width !== width || clip.height !== height)
        throw new Error("compareSheet: clips differ in size");
    }
  }
  const blockW = TILES * width + (TILES - 1) * GAP;
  const sheetW = profiles * blockW + (profiles - 1) * PROFILE_GAP + 2 * GAP;
  const sheetH = rows.length * height + (rows.length + 1) * GAP;
  const sheet = Buffer.alloc(sheetW * sheetH * 3, GAP_COLOUR);
  rows.forEach((row, r) => {
    const y0 = GAP + r * (height + GAP);
    row.forEach((clip, p) => {
      pickFrames(clip.frameCount, TILES).forEach((frameIndex, t) => {
        const frame = frameView(clip, frameIndex);
        const x0 = GAP + p * (blockW + PROFILE_GAP) + t * (width + GAP);
        for (let y = 0; y < height; y++) {
          const src = y * width * 3;
          sheet.set(frame.subarray(src, src + width * 3), ((y0 + y) * sheetW + x0) * 3);
        }
      });
    });
  });
  return encodePng(sheet, sheetW, sheetH);
}
