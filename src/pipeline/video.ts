// Writes the frames as a video file. MP4 (H.264, yuv420p) and animated WebP go through ffmpeg;
// when ffmpeg is missing the clip is written as an animated PNG, which needs no external tool.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
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

const probes = new Map<string, Promise<Ffmpeg | undefined>>();

/**
 * The ffmpeg to use: `FRAMEFLEET_FFMPEG` names the binary (default `ffmpeg` on PATH); the value
 * `none` turns ffmpeg off. Undefined when it is off or does not run. The probe costs a process
 * start (~0.2 s), so its answer is kept for the life of the process.
 */
export function findFfmpeg(env: NodeJS.ProcessEnv = process.env): Promise<Ffmpeg | undefined> {
  const path = env.FRAMEFLEET_FFMPEG ?? "ffmpeg";
  if (path === "" || path === "none") return Promise.resolve(undefined);
  let probe = probes.get(path);
  if (!probe) {
    probe = new Promise((resolve) => {
      execFile(path, ["-hide_banner", "-version"], { timeout: 10_000 }, (err, stdout) => {
        resolve(err ? undefined : { path, version: /ffmpeg version (\S+)/.exec(stdout)?.[1] ?? "unknown" });
      });
    });
    probes.set(path, probe);
  }
  return probe;
}

/** The format that will be written for a request, given whether ffmpeg is there. */
export function plannedFormat(requested: RequestedFormat, ffmpeg: Ffmpeg | undefined): WrittenFormat {
  return requested === "png-frames" || ffmpeg ? requested : "apng";
}

export const MISSING_FFMPEG_MESSAGE =
  "ffmpeg was not found (install it with `apt-get install ffmpeg`, or point FRAMEFLEET_FFMPEG at it); " +
  "writing an animated PNG (.apng) instead";

export interface VideoEncoder {
  /** Writes the frames and resolves when the file is complete. */
  finish(frames: Frames): Promise<void>;
  /** Stops the encoder (if running) and resolves once it has exited; the caller removes the file. */
  cancel(): Promise<void>;
}

/**
 * Starts writing a video to `path` before its frames exist. For mp4 and webp this spawns ffmpeg
 * at once, so its start-up (the larger part of its cost for short clips) overlaps the denoiser;
 * the other formats are written by `finish` alone.
 */
export function startVideoEncoder(
  format: WrittenFormat,
  video: { width: number; height: number; fps: number },
  path: string,
  options: { ffmpeg?: Ffmpeg; signal?: AbortSignal } = {},
): VideoEncoder {
  if (format === "mp4" || format === "webp") {
    if (!options.ffmpeg) throw new Error(`writing ${format} needs ffmpeg`);
    return ffmpegEncoder(options.ffmpeg, ffmpegArgs(format, video, path), options.signal);
  }
  return {
    finish: (frames) => writeWithoutFfmpeg(format, frames, video.fps, path, options.signal),
    cancel: async () => {},
  };
}

function ffmpegEncoder(ffmpeg: Ffmpeg, args: string[], signal?: AbortSignal): VideoEncoder {
  const child: ChildProcessWithoutNullStreams = spawn(ffmpeg.path, args, { stdio: "pipe", signal });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  child.stdout.resume();
  child.stdin.on("error", () => {
    // ffmpeg closing its input early shows up as its exit status.
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg failed (${sig ?? `exit ${code}`}): ${stderr.trim() || "no message"}`));
    });
  });
  exited.catch(() => {
    // Observed by finish or cancel; never an unhandled rejection.
  });
  return {
    finish(frames) {
      child.stdin.end(frames.data.subarray(0, frames.frameCount * frames.width * frames.height * 3));
      return exited;
    },
    async cancel() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited.catch(() => undefined);
    },
  };
}

function ffmpegArgs(
  format: "mp4" | "webp",
  video: { width: number; height: number; fps: number },
  path: string,
) {
  const input = [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...[
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "-s",
      `${video.width}x${video.height}`,
      "-r",
      String(video.fps),
    ],
    ...["-i", "pipe:0"],
  ];
  if (format === "mp4") {
    // ultrafast: x264's encoding time is a few ms for these clips, so start-up and I/O dominate.
    const x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "18"];
    return [...input, ...x264, ...["-movflags", "+faststart", "-f", "mp4", path]];
  }
  return [...input, ...["-c:v", "libwebp_anim", "-quality", "90", "-loop", "0", "-f", "webp", path]];
}

async function writeWithoutFfmpeg(
  format: "apng" | "png-frames",
  frames: Frames,
  fps: number,
  path: string,
  signal?: AbortSignal,
): Promise<void> {
  if (format === "apng") {
    const list = Array.from({ length: frames.frameCount }, (_, i) => frameView(frames, i));
    await writeFile(path, encodeApng(list, frames.width, frames.height, fps), { signal });
    return;
  }
  await mkdir(path, { recursive: true });
  const digits = String(frames.frameCount - 1).length;
  for (let i = 0; i < frames.frameCount; i++) {
    signal?.throwIfAborted();
    const name = `frame-${String(i).padStart(Math.max(4, digits), "0")}.png`;
    await writeFile(join(path, name), encodePng(frameView(frames, i), frames.width, frames.height));
  }
}
