// Writes the frames as a video file. MP4 (H.264, yuv420p) and animated WebP go through ffmpeg;
// when ffmpeg is missing the clip is written as an animated PNG, which needs no external tool.
import { spawn, spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Frames, frameView } from "./contact-sheet.ts";
import { encodeApng, encodePng } from "./png.ts";

/** What a job may ask for (VideoGenerationJob spec.output.format). */
export type RequestedFormat = "mp4" | "webp" | "png-frames";
/** What was written: the request, or `apng` when the request needed ffmpeg and it is missing. */
export type WrittenFormat = RequestedFormat | "apng";

export const EXTENSIONS: Record<WrittenFormat, string> = {
  mp4: ".mp4",
  webp: ".webp",
  "png-frames": "",
  apng: ".apng",
};

export interface Ffmpeg {
  path: string;
  version: string;
}

/**
 * The ffmpeg to use: `FRAMEFLEET_FFMPEG` names the binary (default `ffmpeg` on PATH); the value
 * `none` turns ffmpeg off. Undefined when it is off or does not run.
 */
export function findFfmpeg(env: NodeJS.ProcessEnv = process.env): Ffmpeg | undefined {
  const path = env.FRAMEFLEET_FFMPEG ?? "ffmpeg";
  if (path === "" || path === "none") return undefined;
  const probe = spawnSync(path, ["-hide_banner", "-version"], { encoding: "utf8", timeout: 10_000 });
  if (probe.status !== 0) return undefined;
  const version = /ffmpeg version (\S+)/.exec(probe.stdout)?.[1] ?? "unknown";
  return { path, version };
}

/** The format that will be written for a request, given whether ffmpeg is there. */
export function plannedFormat(requested: RequestedFormat, ffmpeg: Ffmpeg | undefined): WrittenFormat {
  return requested === "png-frames" || ffmpeg ? requested : "apng";
}

export const MISSING_FFMPEG_MESSAGE =
  "ffmpeg was not found (install it with `apt-get install ffmpeg`, or point FRAMEFLEET_FFMPEG at it); " +
  "writing an animated PNG (.apng) instead";

function ffmpegArgs(format: "mp4" | "webp", frames: Frames, fps: number, path: string): string[] {
  const input = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "-s",
    `${frames.width}x${frames.height}`,
    "-r",
    String(fps),
    "-i",
    "pipe:0",
  ];
  if (format === "mp4") {
    return [
      ...input,
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "18"],
      ...["-movflags", "+faststart", "-f", "mp4", path],
    ];
  }
  return [
    ...input,
    ...["-c:v", "libwebp_anim", "-lossless", "0", "-quality", "90", "-loop", "0", "-f", "webp", path],
  ];
}

async function runFfmpeg(
  ffmpeg: Ffmpeg,
  args: string[],
  input: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(ffmpeg.path, args, { stdio: ["pipe", "ignore", "pipe"], signal });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      stderr = (stderr + d).slice(-4000);
    });
    child.on("error", reject);
    child.stdin.on("error", () => {
      // ffmpeg closing its input early shows up as its exit status below.
    });
    child.on("close", (code, sig) => {
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg failed (${sig ?? `exit ${code}`}): ${stderr.trim() || "no message"}`));
    });
    child.stdin.end(input);
  });
}

export interface WriteVideoOptions {
  ffmpeg?: Ffmpeg;
  signal?: AbortSignal;
}

/**
 * Writes `frames` at `fps` to `path` in `format` (a directory of numbered PNGs for png-frames).
 * The caller picks the format with plannedFormat and owns the path's life (temporary name,
 * rename into place, removal on failure).
 */
export async function writeVideo(
  format: WrittenFormat,
  frames: Frames,
  fps: number,
  path: string,
  options: WriteVideoOptions = {},
): Promise<void> {
  const all = frames.data.subarray(0, frames.frameCount * frames.width * frames.height * 3);
  switch (format) {
    case "mp4":
    case "webp": {
      if (!options.ffmpeg) throw new Error(`writing ${format} needs ffmpeg`);
      await runFfmpeg(options.ffmpeg, ffmpegArgs(format, frames, fps, path), all, options.signal);
      return;
    }
    case "apng": {
      const list = Array.from({ length: frames.frameCount }, (_, i) => frameView(frames, i));
      await writeFile(path, encodeApng(list, frames.width, frames.height, fps), { signal: options.signal });
      return;
    }
    case "png-frames": {
      await mkdir(path, { recursive: true });
      const digits = String(frames.frameCount - 1).length;
      for (let i = 0; i < frames.frameCount; i++) {
        options.signal?.throwIfAborted();
        const name = `frame-${String(i).padStart(Math.max(4, digits), "0")}.png`;
        await writeFile(join(path, name), encodePng(frameView(frames, i), frames.width, frames.height));
      }
      return;
    }
  }
}
