// The native engine in npm test: the C++ test binary (kernels against their references, io,
// model, samplers, PyTorch parity) and the binding on a random model the bench binary writes.
// Nothing is built here: `npm ci` / `npm run build:native` produced native/build.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  addonPath,
  backendDescription,
  capabilities,
  loadModel,
  type Model,
  NativeError,
  type Progress,
  runBackend,
} from "./index.ts";

const buildDir = join(addonPath(), "..");
const work = mkdtempSync(join(tmpdir(), "ff-native-test-"));
const modelDir = join(work, "tiny");
const request = { prompt: "a red circle moving left", seed: 7, steps: 2 };

function run(binary: string, args: string[]) {
  const result = spawnSync(join(buildDir, binary), args, { encoding: "utf8" });
  if (result.error)
    throw new Error(`${binary} did not run (${result.error.message}); run \`npm run build:native\``);
  return result;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  text?: string | RegExp,
): Promise<NativeError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof NativeError, `expected a NativeError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (text)
      assert.match(
        err.message,
        typeof text === "string" ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : text,
      );
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

before(() => {
  const made = run("framefleet_bench", ["make-model", modelDir]);
  assert.equal(made.status, 0, made.stderr);
});
after(() => rmSync(work, { recursive: true, force: true }));

test("the C++ engine tests pass (kernels, io, model, samplers, parity)", () => {
  const result = run("framefleet_tests", []);
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, / 0 failed/);
});

test("capabilities report the CPU and the knob values this build runs", () => {
  const caps = capabilities();
  assert.ok(caps.threads >= 1);
  assert.ok(caps.backends.includes("cpu"));
  assert.match(backendDescription(caps), new RegExp(`^cpu \\(${caps.threads} threads?`));
  const scores = { scalar: 1, avx2: 0, avx512: 0, vnni: 0, amx: 0 };
  const bare = { ...caps, threads: 1, cpu: { ...caps.cpu, variantScores: scores } };
  assert.equal(backendDescription(bare), "cpu (1 thread, scalar kernels)");
  const capped = {
    ...caps,
    threads: 2,
    cpu: { ...caps.cpu, variantScores: { ...scores, avx2: 2, vnni: 4 } },
  };
  assert.equal(backendDescription(capped), "cpu (2 threads, vnni kernels)", "the highest-scoring variant");
  assert.ok(caps.knobs.attention.includes("dense"));
  assert.ok(caps.knobs.linear.includes("fp32"));
  assert.deepEqual(caps.knobs.sampler, ["euler", "rcm"]);
  assert.equal(caps.cpu.variantScores.scalar, 1);
});

test("capabilities list the backends this build has and the GPU found, if any", () => {
  const caps = capabilities();
  assert.deepEqual(caps.backends, caps.cuda.built ? ["cpu", "cuda"] : ["cpu"]);
  if (!caps.cuda.built) assert.match(caps.cuda.reason ?? "", /built without CUDA/);
  assert.ok(caps.cuda.device || caps.cuda.reason, "either a device or why there is none");
  const h200 = {
    ...caps,
    cuda: { built: true, device: { name: "NVIDIA H200", computeCapability: "9.0", memoryBytes: 1 } },
  };
  assert.equal(backendDescription(h200, "cuda"), "cuda (NVIDIA H200, sm_90)");
  const rtx = {
    ...h200,
    cuda: {
      built: true,
      device: { ...h200.cuda.device, name: "NVIDIA GeForce RTX 5090", computeCapability: "12.0" },
    },
  };
  assert.equal(backendDescription(rtx, "cuda"), "cuda (NVIDIA GeForce RTX 5090, sm_120)");
  const label = backendDescription(h200, "cuda");
  assert.equal(runBackend(label, "cuda", { linear: "w8a8" }), `${label}; w8a8 linears ran as bf16`);
  assert.equal(runBackend(label, "cuda", { linear: "bf16" }), label);
  assert.equal(
    runBackend("cpu (2 threads, amx kernels)", "cpu", { linear: "w8a8" }),
    "cpu (2 threads, amx kernels)",
  );
});

describe("the backend choice", () => {
  const saved = process.env.FRAMEFLEET_BACKEND;
  after(() => {
    if (saved === undefined) delete process.env.FRAMEFLEET_BACKEND;
    else process.env.FRAMEFLEET_BACKEND = saved;
  });

  test("auto runs on the GPU only where one is usable, else on the CPU", async () => {
    delete process.env.FRAMEFLEET_BACKEND;
    const caps = capabilities();
    const model = await loadModel(modelDir);
    // The random model's heads are 24 wide, which the CUDA kernels do not run: the CPU, with a note.
    assert.equal(model.backend, "cpu");
    assert.equal(model.backendNote !== undefined, caps.cuda.built);
    const forced = await loadModel(modelDir, { backend: "cpu" });
    assert.equal(forced.backend, "cpu");
    assert.equal(forced.backendLabel, backendDescription(caps));
  });

  test("cuda where it cannot run is one clear error at load, from the option or FRAMEFLEET_BACKEND", async () => {
    const caps = capabilities();
    const why = caps.cuda.built ? /'cuda': / : /'cuda': this engine was built without CUDA/;
    const err = await rejectsWith(loadModel(modelDir, { backend: "cuda" }), "E_BAD_REQUEST", why);
    assert.match(err.message, /^backend 'cuda': /);
    assert.doesNotMatch(err.message, /\n/, "one line");
    process.env.FRAMEFLEET_BACKEND = "cuda";
    await rejectsWith(loadModel(modelDir), "E_BAD_REQUEST", /^FRAMEFLEET_BACKEND 'cuda': /);
    // The load option wins over the environment.
    assert.equal((await loadModel(modelDir, { backend: "cpu" })).backend, "cpu");
    process.env.FRAMEFLEET_BACKEND = "gpu";
    await rejectsWith(
      loadModel(modelDir),
      "E_BAD_REQUEST",
      "FRAMEFLEET_BACKEND: 'gpu' is not one of auto, cpu, cuda",
    );
    delete process.env.FRAMEFLEET_BACKEND;
    await rejectsWith(loadModel(modelDir, { backend: "gpu" } as never), "E_BAD_REQUEST", "options.backend");
  });
});

describe("a loaded random model", () => {
  let model: Model;
  before(async () => {
    model = await loadModel(modelDir);
  });

  test("generates uint8 RGB frames off the main thread with stage timings and nfe", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const seen: Progress[] = [];
    const result = await model.generate(request, { onProgress: (p) => seen.push(p) });
    clearInterval(timer);
    assert.equal(result.width, 32);
    assert.equal(result.height, 32);
    assert.equal(result.frameCount, 5);
    assert.equal(result.frames.length, 5 * 32 * 32 * 3);
    assert.equal(result.nfe, 4, "2 Euler steps with CFG");
    assert.equal(result.backend, backendDescription(), "names the backend that ran");
    assert.equal(result.knobs.guidanceScale, 3);
    for (const stage of ["textEncode", "denoise", "decode"] as const)
      assert.ok(result.timings[stage] > 0, stage);
    assert.deepEqual([...new Set(seen.map((p) => p.stage))], ["textEncode", "denoise", "decode"]);
    assert.ok(seen.some((p) => p.stage === "denoise" && p.step === 2 && p.totalSteps === 2));
    assert.ok(ticks > 0, "the event loop ran while the engine worked");
    assert.ok(new Set(result.frames).size > 10, "frames are not constant");
  });

  test("the same seed gives the same frames bit for bit and another seed does not", async () => {
    const a = await model.generate(request);
    const b = await model.generate(request);
    const c = await model.generate({ ...request, seed: 8 });
    assert.ok(a.frames.equals(b.frames));
    assert.ok(!a.frames.equals(c.frames));
  });

  test("runs the student with the rcm sampler, one evaluation per step", async () => {
    const result = await model.generate({
      ...request,
      weights: "student",
      sampler: "rcm",
      steps: 3,
      guidanceScale: 1,
    });
    assert.equal(result.nfe, 3);
  });

  test("counts only full evaluations in nfe when TeaCache skips block stacks", async () => {
    const plain = await model.generate({ ...request, steps: 5 });
    const cached = await model.generate({ ...request, steps: 5, teaCache: 1 });
    assert.equal(plain.nfe, 10, "5 Euler steps with CFG");
    // The first and last step of each CFG pass always run (4); the largest threshold skips some
    // of the 6 middle evaluations, and those are no evaluations of the network.
    assert.ok(cached.nfe >= 4 && cached.nfe < 10, `nfe ${cached.nfe}`);
  });

  test("rejects malformed requests in TypeScript before they reach the engine", async () => {
    await rejectsWith(model.generate({ ...request, width: 32.5 }), "E_BAD_REQUEST", "request.width");
    await rejectsWith(
      model.generate({ ...request, attention: "fast" } as never),
      "E_BAD_REQUEST",
      "request.attention",
    );
    await rejectsWith(model.generate({ ...request, extra: 1 } as never), "E_BAD_REQUEST", "extra");
  });

  test("engine-side errors carry their code and the caller's stack", async () => {
    const err = await rejectsWith(
      model.generate({ ...request, prompt: "a purple circle" }),
      "E_BAD_REQUEST",
      "'purple'",
    );
    assert.match(err.stack ?? "", /native\.test\.ts/);
    await rejectsWith(model.generate({ ...request, width: 40 }), "E_BAD_REQUEST", "width: 40");
    await rejectsWith(model.generate({ ...request, sampler: "rcm", steps: 6 }), "E_BAD_REQUEST", "steps");
  });

  test("an abort stops the run within one denoising step", async () => {
    // Progress reaches JavaScript a little after the engine sends it, so the check is on the step
    // the engine reports it stopped at: before the end, and no later than one step after the
    // last step JavaScript had seen when it aborted (plus what was still queued then).
    const controller = new AbortController();
    const total = 400;
    let seenAtAbort = 0;
    const run = model.generate(
      { ...request, steps: total, guidanceScale: 1 },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage !== "denoise" || p.step === 0 || controller.signal.aborted) return;
          seenAtAbort = p.step;
          controller.abort();
        },
      },
    );
    const err = await rejectsWith(run, "E_ABORTED", /after \d+ of 400 denoising steps/);
    const stoppedAt = Number(/after (\d+) of/.exec(err.message)?.[1]);
    assert.ok(
      stoppedAt >= seenAtAbort && stoppedAt < total,
      `stopped at ${stoppedAt}, abort seen at ${seenAtAbort}`,
    );
    await rejectsWith(model.generate(request, { signal: AbortSignal.abort() }), "E_ABORTED");
  });

  test("a request larger than the memory limit fails with E_OUT_OF_MEMORY before any work", async () => {
    const small = await loadModel(modelDir, { memoryLimitBytes: 1 << 16 });
    await rejectsWith(small.generate(request), "E_OUT_OF_MEMORY", "MiB");
  });
});

test("loading a corrupt model rejects with E_MODEL_FORMAT naming the file", async () => {
  const bad = join(work, "bad");
  assert.equal(run("framefleet_bench", ["make-model", bad, "--no-student"]).status, 0);
  const dit = join(bad, "dit.safetensors");
  writeFileSync(dit, readFileSync(dit).subarray(0, 1000));
  await rejectsWith(loadModel(bad), "E_MODEL_FORMAT", "dit.safetensors");
  await rejectsWith(loadModel(join(work, "nowhere")), "E_MODEL_FORMAT", "config.json");
});

test("a missing or broken addon gives one actionable message", () => {
  const script =
    "import('./src/native/index.ts').then((m) => m.capabilities()).catch((e) => { console.log(e.code + ' ' + e.message); })";
  const broken = join(work, "broken.node");
  writeFileSync(broken, "not a shared object");
  for (const [path, text] of [
    [join(work, "missing.node"), "is missing"],
    [broken, "could not be loaded"],
  ] as const) {
    const out = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, FRAMEFLEET_NATIVE_ADDON: path },
    });
    assert.match(out.stdout, new RegExp(`E_NATIVE_UNAVAILABLE .*${text}.*npm run build:native`));
  }
});
