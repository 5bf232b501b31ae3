// The preview: a contact sheet of evenly spaced frames, so one PNG shows how the clip moves.
import { encodePng } from "./png.ts";

export interface Frames {
  /** uint8 RGB, frame-major: `frameCount * height * width * 3` bytes. */
  data: Uint8Array;
  width: number;
  height: number;
  frameCount: number;
}

export interface ContactSheetOptions {
  /** How many frames to show (default 8, at most the clip's frame count). */
  tiles?: number;
  /** Tiles per row (default 4). */
  columns?: number;
  /** Longest side of a tile in pixels; larger frames are downscaled (default 256). */
  maxTile?: number;
}

const GAP = 4;
const GAP_COLOUR = 64;

/** Indices of `n` frames spread evenly from the first to the last. */
export function pickFrames(frameCount: number, n: number): number[] {
  const count = Math.max(1, Math.min(n, frameCount));
  if (count === 1) return [0];
  return Array.from({ length: count }, (_, i) => Math.round((i * (frameCount - 1)) / (count - 1)));
}

export function frameView(frames: Frames, index: number): Uint8Array {
  const size = frames.width * frames.height * 3;
  return frames.data.subarray(index * size, (index + 1) * size);
}

export function contactSheet(frames: Frames, options: ContactSheetOptions = {}): Buffer {
  const picked = pickFrames(frames.frameCount, options.tiles ?? 8);
  const columns = Math.min(options.columns ?? 4, picked.length);
  const rows = Math.ceil(picked.length / columns);
  const shrink = Math.max(1, Math.ceil(Math.max(frames.width, frames.height) / (options.maxTile ?? 256)));
  const tileW = Math.ceil(frames.width / shrink);
  const tileH = Math.ceil(frames.height / shrink);
  const sheetW = columns * tileW + (columns + 1) * GAP;
  const sheetH = rows * tileH + (rows + 1) * GAP;
  const sheet = Buffer.alloc(sheetW * sheetH * 3, GAP_COLOUR);
  picked.forEach((frameIndex, tile) => {
    const frame = frameView(frames, frameIndex);
    const x0 = GAP + (tile % columns) * (tileW + GAP);
    const y0 = GAP + Math.floor(tile / columns) * (tileH + GAP);
    for (let y = 0; y < tileH; y++) {
      for (let x = 0; x < tileW; x++) {
        const src = (y * shrink * frames.width + x * shrink) * 3;
        const dst = ((y0 + y) * sheetW + x0 + x) * 3;
        sheet[dst] = frame[src] as number;
        sheet[dst + 1] = frame[src + 1] as number;
        sheet[dst + 2] = frame[src + 2] as number;
      }
    }
  });
  return encodePng(sheet, sheetW, sheetH);
}
