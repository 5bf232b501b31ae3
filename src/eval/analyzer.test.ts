import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeClip } from "./analyzer.ts";
import { synthClip } from "./testing/synth.ts";
import { directions, type Scene, shapes } from "./vocabulary.ts";

const base: Scene = { colour: "orange", shape: "square", direction: "right", background: "navy" };

describe("analyzeClip", () => {
  for (const shape of shapes) {
    it(`names a ${shape} whatever its rotation`, () => {
      for (const rotation of [0, 0.3, 0.9, 2]) {
        const a = analyzeClip(synthClip({ ...base, shape }, { width: 96, height: 96, frames: 5, rotation }));
        assert.equal(a.shape.value, shape, `rotation ${rotation}: ${JSON.stringify(a.shape.features)}`);
        assert.ok(a.shape.confidence > 0.5, `rotation ${rotation}: confidence ${a.shape.confidence}`);
      }
    });
  }

  it("follows the object in each direction, with image y growing downwards", () => {
    for (const direction of directions) {
      const a = analyzeClip(synthClip({ ...base, direction }, { frames: 7 }));
      assert.equal(a.direction.value, direction);
      assert.ok(a.direction.confidence > 0.9);
      const v = a.direction.velocity;
      assert.ok(v);
      const expected = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] }[direction];
      // 32 px over 6 frame steps
      assert.ok(Math.abs(v.x - (expected?.[0] ?? 0) * (32 / 6)) < 0.2, `vx ${v.x}`);
      assert.ok(Math.abs(v.y - (expected?.[1] ?? 0) * (32 / 6)) < 0.2, `vy ${v.y}`);
    }
  });

  it("reads colour and background with their measured RGB", () => {
    const a = analyzeClip(
      synthClip({ colour: "purple", shape: "circle", direction: "up", background: "gray" }),
    );
    assert.equal(a.found, true);
    assert.equal(a.framesWithObject, 9);
    assert.equal(a.colour.value, "purple");
    assert.deepEqual(a.colour.rgb, [150, 60, 200]);
    assert.equal(a.background.value, "gray");
    assert.deepEqual(a.background.rgb, [110, 110, 110]);
    assert.ok(a.colour.confidence > 0.9);
  });

  it("finds an object larger than the renderer draws, covering over half the frame", () => {
    const a = analyzeClip(
      synthClip(
        { ...base, shape: "circle", background: "gray" },
        { width: 64, height: 64, size: 50, travel: 8 },
      ),
    );
    assert.equal(a.found, true);
    assert.equal(a.shape.value, "circle");
    assert.equal(a.colour.value, "orange");
    assert.equal(a.direction.value, "right");
  });

  it("gives no direction to an object that stays put", () => {
    const a = analyzeClip(synthClip(base, { travel: 1 }));
    assert.equal(a.found, true);
    assert.equal(a.direction.value, null);
    assert.equal(a.shape.value, "square");
  });

  it("finds nothing in a clip of plain background", () => {
    const clip = synthClip(base, { size: 0 });
    const a = analyzeClip(clip);
    assert.equal(a.found, false);
    assert.equal(a.colour.value, null);
    assert.equal(a.shape.value, null);
    assert.equal(a.direction.value, null);
    assert.equal(a.background.value, "navy");
  });

  it("does not call an object that shows in fewer than half of the frames found", () => {
    const clip = synthClip(base, { frames: 9 });
    const frameBytes = clip.width * clip.height * 3;
    const empty = synthClip(base, { frames: 1, size: 0 }).data;
    for (let t = 0; t < 5; t++) clip.data.set(empty, t * frameBytes);
    const a = analyzeClip(clip);
    assert.equal(a.found, false);
    assert.equal(a.framesWithObject, 4);
  });

  it("ignores specks of noise beside the object", () => {
    const clip = synthClip(base, { frames: 5 });
    for (let t = 0; t < 5; t++) {
      const o = (t * clip.width * clip.height + 3 * clip.width + 3) * 3;
      clip.data.set([245, 245, 245], o);
    }
    const a = analyzeClip(clip);
    assert.equal(a.shape.value, "square");
    assert.equal(a.colour.value, "orange");
    assert.equal(a.direction.value, "right");
  });

  it("rejects data whose length does not match the frame size", () => {
    assert.throws(
      () => analyzeClip({ data: new Uint8Array(10), width: 4, height: 4, frameCount: 1 }),
      /clip data has 10 bytes but 1 frames of 4x4 RGB need 48/,
    );
    assert.throws(
      () => analyzeClip({ data: new Uint8Array(0), width: 0, height: 4, frameCount: 1 }),
      /width/,
    );
  });
});
