// Progress of a run for people and for programs: on a terminal, one bar per stage with its steps,
// elapsed time and ETA, redrawn in place; elsewhere, one JSON object per line.
import type { ProgressEvent, StageName } from "./run.ts";

export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressDisplay {
  update(event: ProgressEvent): void;
  /** A one-line message shown above the bars (or as a JSON line). */
  notice(message: string): void;
  /** Draws the final state once; later calls and updates change nothing. */
  finish(): void;
}

interface StageState {
  stage: StageName;
  step: number;
  totalSteps: number;
  started: number;
  updated: number;
}

const REDRAW_SECONDS = 0.1;

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, "0")}s`;
}

/** Seconds left in a stage, extrapolated from the steps done so far; undefined before the first step. */
export function estimateRemaining(state: { step: number; totalSteps: number; started: number }, now: number) {
  if (state.step <= 0) return undefined;
  return ((now - state.started) / state.step) * Math.max(0, state.totalSteps - state.step);
}

export function createProgress(
  out: ProgressOutput,
  options: { tty?: boolean; clock?: () => number } = {},
): ProgressDisplay {
  const clock = options.clock ?? (() => performance.now() / 1000);
  const tty = options.tty ?? out.isTTY === true;
  const stages: StageState[] = [];
  const origin = clock();
  let drawnLines = 0;
  let lastDraw = -Infinity;
  let finished = false;

  function track(event: ProgressEvent, t: number): StageState {
    let state = stages.find((s) => s.stage === event.stage);
    if (!state) {
      state = { stage: event.stage, step: 0, totalSteps: event.totalSteps, started: t, updated: t };
      stages.push(state);
    }
    state.step = event.step;
    state.totalSteps = event.totalSteps;
    state.updated = t;
    return state;
  }

  function line(s: StageState, t: number): string {
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 48));
    const fraction = s.totalSteps > 0 ? Math.min(1, s.step / s.totalSteps) : 1;
    const filled = Math.round(fraction * width);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    const done = s.step >= s.totalSteps;
    const end = done ? s.updated : t;
    const eta = done ? "done" : `ETA ${formatSeconds(estimateRemaining(s, t) ?? Number.NaN)}`;
    const steps = `${s.step}/${s.totalSteps}`.padStart(7);
    return `${s.stage.padEnd(10)} ${bar} ${steps} ${formatSeconds(end - s.started).padStart(6)} ${eta}`;
  }

  function draw(t: number): void {
    const up = drawnLines > 0 ? `\x1b[${drawnLines}F` : "";
    const body = stages.map((s) => `\x1b[2K${line(s, t)}\n`).join("");
    out.write(up + body);
    drawnLines = stages.length;
    lastDraw = t;
  }

  return {
    update(event) {
      if (finished) return;
      const t = clock();
      const state = track(event, t);
      if (!tty) {
        const eta = estimateRemaining(state, t);
        out.write(
          `${JSON.stringify({
            event: "progress",
            stage: event.stage,
            step: event.step,
            totalSteps: event.totalSteps,
            elapsed: Number((t - origin).toFixed(3)),
            ...(eta !== undefined ? { eta: Number(eta.toFixed(3)) } : {}),
          })}\n`,
        );
        return;
      }
      if (event.step >= event.totalSteps || event.step === 0 || t - lastDraw >= REDRAW_SECONDS) draw(t);
    },
    notice(message) {
      if (!tty) {
        out.write(`${JSON.stringify({ event: "notice", message })}\n`);
        return;
      }
      const up = drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[0J` : "";
      out.write(`${up}${message}\n`);
      drawnLines = 0;
      if (stages.length > 0) draw(clock());
    },
    finish() {
      if (finished) return;
      finished = true;
      if (tty && stages.length > 0) draw(clock());
    },
  };
}
