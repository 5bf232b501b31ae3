import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { contactSheet, pickFrames } from "./contact-sheet.ts";
import { crc32, decodePng, encodeApng, encodePng } from "./png.ts";
import { drawFrames } from "./test-support.ts";

function randomImage(width: number, height: number, seed: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return data;
}

describe("png", () => {
  it("computes the CRC-32 PNG uses", () => {
    assert.equal(crc32(Buffer.from("IEND")), 0xae426082);
    assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  });

  it("round-trips random RGB pixels", () => {
    const rgb = randomImage(37, 11, 3);
    const png = decodePng(encodePng(rgb, 37, 11));
    assert.deepEqual([png.width, png.height, png.chunks], [37, 11, ["IHDR", "IDAT", "IEND"]]);
    assert.deepEqual(new Uint8Array(png.rgb), rgb);
  });

  it("rejects data of the wrong size", () => {
    assert.throws(() => encodePng(new Uint8Array(10), 2, 2), /10 bytes, expected 2x2x3 = 12/);
  });

  it("writes an APNG with one fcTL per frame and sequence numbers in order", () => {
    const frames = [randomImage(8, 8, 1), randomImage(8, 8, 2), randomImage(8, 8, 3)];
    const file = encodeApng(frames, 8, 8, 16);
    const png = decodePng(file);
    assert.deepEqual(png.chunks, ["IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND"]);
    assert.deepEqual(new Uint8Array(png.rgb), frames[0]);
    const acTL = file.indexOf("acTL");
    assert.equal(file.readUInt32BE(acTL + 4), 3, "frame count");
    const sequences: number[] = [];
    for (let at = file.indexOf("fcTL"); at >= 0; at = file.indexOf("fcTL", at + 4)) {
      sequences.push(file.readUInt32BE(at + 4));
      assert.deepEqual([file.readUInt16BE(at + 24), file.readUInt16BE(at + 26)], [1, 16], "1/16 s per frame");
    }
    for (let at = file.indexOf("fdAT"); at >= 0; at = file.indexOf("fdAT", at + 4))
      sequences.push(file.readUInt32BE(at + 4));
    assert.deepEqual(
      sequences.sort((a, b) => a - b),
      [0, 1, 2, 3, 4],
    );
  });
});

describe("contact sheet", () => {
  it("picks frames evenly from first to last", () => {
    assert.deepEqual(pickFrames(33, 8), [0, 5, 9, 14, 18, 23, 27, 32]);
    assert.deepEqual(pickFrames(3, 8), [0, 1, 2]);
    assert.deepEqual(pickFrames(1, 8), [0]);
  });

  it("tiles the picked frames in a grid with gaps", () => {
    const frames = { data: drawFrames(16, 16, 9), width: 16, height: 16, frameCount: 9 };
    const sheet = decodePng(contactSheet(frames, { tiles: 8, columns: 4 }));
    assert.deepEqual([sheet.width, sheet.height], [4 * 16 + 5 * 4, 2 * 16 + 3 * 4]);
    const at = (x: number, y: number) => sheet.rgb[(y * sheet.width + x) * 3];
    assert.equal(at(0, 0), 64, "gap colour");
    assert.equal(at(4, 4), 255, "frame 0: square at x = 0");
    // Tile 7 is frame 8: square from x = 8, so its column 7 is background and column 8 white.
    const x7 = 4 + 3 * 20;
    const y7 = 4 + 20;
    assert.equal(at(x7 + 7, y7), 0);
    assert.equal(at(x7 + 8, y7), 255);
  });

  it("downscales large frames to the tile limit", () => {
    const frames = { data: drawFrames(512, 256, 1), width: 512, height: 256, frameCount: 1 };
    const sheet = decodePng(contactSheet(frames, { maxTile: 256 }));
    assert.deepEqual([sheet.width, sheet.height], [256 + 8, 128 + 8]);
  });
});
