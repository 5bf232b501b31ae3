// PNG and animated PNG (APNG) encoding with node:zlib only, so previews and the no-ffmpeg video
// fallback need no external tool. Images are 8-bit RGB, row-major, `width * height * 3` bytes.
import { deflateSync, inflateSync } from "node:zlib";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// CRC-32 (IEEE) as PNG defines it; zlib.crc32 only exists from Node 20.15.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(...parts: Buffer[]): number {
  let c = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++)
      c = (CRC_TABLE[(c ^ (part[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(head.subarray(4), data), 0);
  return Buffer.concat([head, data, crc]);
}

function header(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return chunk("IHDR", ihdr);
}

/** zlib stream of the image's scanlines, each with the "sub" filter (flat areas compress well). */
function imageData(rgb: Uint8Array, width: number, height: number): Buffer {
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const src = y * stride;
    const dst = y * (stride + 1);
    raw[dst] = 1;
    for (let x = 0; x < stride; x++) {
      const left = x >= 3 ? (rgb[src + x - 3] as number) : 0;
      raw[dst + 1 + x] = ((rgb[src + x] as number) - left) & 0xff;
    }
  }
  return deflateSync(raw, { level: 6 });
}

function checkImage(rgb: Uint8Array, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers (got ${width}x${height})`);
  }
  if (rgb.length !== width * height * 3) {
    throw new RangeError(
      `PNG data has ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`,
    );
  }
}

export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  checkImage(rgb, width, height);
  return Buffer.concat([
    SIGNATURE,
    header(width, height),
    chunk("IDAT", imageData(rgb, width, height)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/**
 * An animated PNG of `frames` (each `width * height * 3` bytes) shown at `fps`, looping forever.
 * Viewers without APNG support show the first frame.
 */
export function encodeApng(frames: Uint8Array[], width: number, height: number, fps: number): Buffer {
  if (frames.length === 0) throw new RangeError("APNG needs at least one frame");
  if (!(fps > 0 && fps <= 1000)) throw new RangeError(`APNG fps must be in (0, 1000] (got ${fps})`);
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(frames.length, 0);
  actl.writeUInt32BE(0, 4); // loop forever
  const parts: Buffer[] = [SIGNATURE, header(width, height), chunk("acTL", actl)];
  let sequence = 0;
  // Frame delay as a fraction delay_num/delay_den seconds, exact for integer fps up to 65535.
  const delayNum = Number.isInteger(fps) ? 1 : Math.round(1000 / fps);
  const delayDen = Number.isInteger(fps) ? fps : 1000;
  frames.forEach((frame, index) => {
    checkImage(frame, width, height);
    const fctl = Buffer.alloc(26);
    fctl.writeUInt32BE(sequence++, 0);
    fctl.writeUInt32BE(width, 4);
    fctl.writeUInt32BE(height, 8);
    fctl.writeUInt32BE(0, 12); // x offset
    fctl.writeUInt32BE(0, 16); // y offset
    fctl.writeUInt16BE(delayNum, 20);
    fctl.writeUInt16BE(delayDen, 22);
    fctl[24] = 0; // dispose: none
    fctl[25] = 0; // blend: source
    parts.push(chunk("fcTL", fctl));
    const data = imageData(frame, width, height);
    if (index === 0) {
      parts.push(chunk("IDAT", data));
    } else {
      const seq = Buffer.alloc(4);
      seq.writeUInt32BE(sequence++, 0);
      parts.push(chunk("fdAT", Buffer.concat([seq, data])));
    }
  });
  parts.push(chunk("IEND", Buffer.alloc(0)));
  return Buffer.concat(parts);
}

export interface DecodedPng {
  width: number;
  height: number;
  /** Chunk types in file order, e.g. ["IHDR", "acTL", "fcTL", "IDAT", ...]. */
  chunks: string[];
  /** RGB pixels of the default image (the IDAT stream). */
  rgb: Buffer;
}

/**
 * Reads back what encodePng/encodeApng write (8-bit RGB, filters none/sub/up), checking every CRC.
 * It exists so tests and the bench can check pixels of written files without another decoder.
 */
export function decodePng(file: Buffer): DecodedPng {
  if (file.length < 8 || !file.subarray(0, 8).equals(SIGNATURE)) throw new Error("not a PNG file");
  let offset = 8;
  let width = 0;
  let height = 0;
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  while (offset + 12 <= file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString("latin1", offset + 4, offset + 8);
    const data = file.subarray(offset + 8, offset + 8 + length);
    if (data.length !== length) throw new Error(`PNG chunk ${type} is truncated`);
    const crc = file.readUInt32BE(offset + 8 + length);
    if (crc !== crc32(file.subarray(offset + 4, offset + 8), data))
      throw new Error(`PNG chunk ${type}: bad CRC`);
    chunks.push(type);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2) throw new Error("only 8-bit RGB PNG is supported");
    } else if (type === "IDAT") {
      idat.push(data);
    }
    offset += 12 + length;
    if (type === "IEND") break;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  const rgb = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x] as number;
      const left = x >= 3 ? (rgb[y * stride + x - 3] as number) : 0;
      const up = y > 0 ? (rgb[(y - 1) * stride + x] as number) : 0;
      if (filter === 0) rgb[y * stride + x] = v;
      else if (filter === 1) rgb[y * stride + x] = (v + left) & 0xff;
      else if (filter === 2) rgb[y * stride + x] = (v + up) & 0xff;
      else throw new Error(`PNG filter ${filter} is not supported`);
    }
  }
  return { width, height, chunks, rgb };
}
