import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProgress } from "./progress.ts";

function capture() {
  const chunks: string[] = [];
  return { chunks, write: (c: string) => chunks.push(c) };
}

describe("progress", () => {
  it("writes one JSON object per event when not on a terminal, with an ETA from the step rate", () => {
    const out = capture();
    let t = 100;
    const progress = createProgress(out, { tty: false, clock: () => t });
    progress.update({ stage: "denoise", step: 0, totalSteps: 4 });
    t = 101;
    progress.update({ stage: "denoise", step: 1, totalSteps: 4 });
    progress.notice("ffmpeg was not found");
    const lines = out.chunks
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      { event: "progress", stage: "denoise", step: 0, totalSteps: 4, elapsed: 0 },
      { event: "progress", stage: "denoise", step: 1, totalSteps: 4, elapsed: 1, eta: 3 },
      { event: "notice", message: "ffmpeg was not found" },
    ]);
  });

  it("draws a bar per stage with steps and ETA on a terminal, redrawing in place", () => {
    const out = { ...capture(), columns: 100 };
    let t = 0;
    const progress = createProgress(out, { tty: true, clock: () => t });
    progress.update({ stage: "textEncode", step: 0, totalSteps: 1 });
    t = 0.5;
    progress.update({ stage: "textEncode", step: 1, totalSteps: 1 });
    progress.update({ stage: "denoise", step: 0, totalSteps: 50 });
    t = 2.5;
    progress.update({ stage: "denoise", step: 10, totalSteps: 50 });
    progress.finish();
    const last = out.chunks[out.chunks.length - 1] ?? "";
    const ESC = String.fromCharCode(27);
    assert.ok(last.startsWith(`${ESC}[2F`), "moves up over the two bars drawn before");
    const [encodeLine, denoiseLine] = last
      .split("\n")
      .map((l) => l.replaceAll(`${ESC}[2K`, "").replace(`${ESC}[2F`, ""));
    assert.match(encodeLine ?? "", /^textEncode █+ +1\/1 +0\.5s done$/);
    assert.match(denoiseLine ?? "", /^denoise +█{8}░{32} +10\/50 +2\.0s ETA 8\.0s$/);
  });

  it("throttles terminal redraws between step boundaries", () => {
    const out = capture();
    let t = 0;
    const progress = createProgress(out, { tty: true, clock: () => t });
    progress.update({ stage: "denoise", step: 0, totalSteps: 100 });
    for (let step = 1; step < 100; step++) {
      t += 0.001;
      progress.update({ stage: "denoise", step, totalSteps: 100 });
    }
    assert.equal(out.chunks.length, 1, "99 steps within 0.1 s draw nothing new");
    progress.update({ stage: "denoise", step: 100, totalSteps: 100 });
    assert.equal(out.chunks.length, 2, "the end of a stage always draws");
    progress.finish();
    progress.finish();
    progress.update({ stage: "decode", step: 0, totalSteps: 1 });
    assert.equal(out.chunks.length, 3, "finish draws once; nothing draws after it");
  });
});
