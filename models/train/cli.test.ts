import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import { parseModelMetadata } from "../../contracts/model.ts";
import { plantSeries } from "./plant_series.ts";

const dir = mkdtempSync(join(tmpdir(), "train-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function train(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "models/train/cli.ts", ...args], {
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A float32 C-order .npy file. */
function npy(values: Float32Array, rows: number, cols: number): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  header += `${" ".repeat(63 - ((10 + header.length) % 64))}\n`;
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}

async function checkModel(outDir: string, name: string, names: string[]): Promise<void> {
  const meta = parseModelMetadata(JSON.parse(readFileSync(join(outDir, `${name}.json`), "utf8")));
  const bytes = readFileSync(join(outDir, `${name}.onnx`));
  assert.equal(meta.onnx_sha256, createHash("sha256").update(bytes).digest("hex"));
  assert.deepEqual(meta.feature_names, names);
  assert.equal(meta.window_size, 5);
  const session = await ort.InferenceSession.create(bytes);
  const F = names.length;
  const out = await session.run({
    [meta.input_name]: new ort.Tensor("float32", new Float32Array(2 * 5 * F), [2, 5, F]),
  });
  assert.deepEqual(out[meta.output_name].dims, [2, F]);
}

describe("train cli", () => {
  const series = plantSeries(40, 400, 3, 1);

  it("train cli trains a model end to end from a small NPY file", async () => {
    const input = join(dir, "small.npy");
    writeFileSync(input, npy(series.values, 400, 40));
    const out = join(dir, "npy");
    const r = train("--input", input, "--out", out, "--model", "mine");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /40\/40 features/);
    await checkModel(
      out,
      "mine",
      Array.from({ length: 40 }, (_, i) => `feature_${i}`),
    );
  });

  it("train cli trains a model end to end from a small CSV file with its own names", async () => {
    const names = Array.from({ length: 40 }, (_, i) => `pump${i}.temp`);
    const lines = [names.join(",")];
    for (let t = 0; t < 400; t++)
      lines.push(Array.from(series.values.subarray(t * 40, t * 40 + 40)).join(","));
    const input = join(dir, "small.csv");
    writeFileSync(input, `${lines.join("\n")}\n`);
    const out = join(dir, "csv");
    const r = train("--input", input, "--out", out, "--model", "plant_a_linear");
    assert.equal(r.status, 0, r.stderr);
    await checkModel(out, "plant_a_linear", names);
    const meta = JSON.parse(readFileSync(join(out, "plant_a_linear.json"), "utf8"));
    assert.equal(meta.kind, "featurewise_ocsvm_linear");
  });

  it("train cli writes identical bytes for the same seed", () => {
    const a = join(dir, "rep_a");
    const b = join(dir, "rep_b");
    for (const out of [a, b]) {
      const r = train("--features", "60", "--frames", "300", "--seed", "9", "--out", out);
      assert.equal(r.status, 0, r.stderr);
    }
    for (const file of [
      "featurewise_ocsvm.onnx",
      "featurewise_ocsvm.json",
      "featurewise_ocsvm_linear.onnx",
    ]) {
      assert.deepEqual(readFileSync(join(a, file)), readFileSync(join(b, file)), file);
    }
    const c = join(dir, "rep_c");
    assert.equal(
      train("--features", "60", "--frames", "300", "--seed", "10", "--out", c).status,
      0,
    );
    assert.notDeepEqual(
      readFileSync(join(a, "featurewise_ocsvm.onnx")),
      readFileSync(join(c, "featurewise_ocsvm.onnx")),
    );
  });

  it("train cli stops with a clear message on bad input", () => {
    const header = "a,b,c";
    const good = Array.from({ length: 150 }, (_, t) => `${t},${t % 7},${Math.sin(t)}`);
    const cases: [string, string, RegExp][] = [
      [
        "ragged.csv",
        [header, ...good.slice(0, 10), "1,2", ...good].join("\n"),
        /ragged row: 2 values, header has 3/,
      ],
      [
        "nan.csv",
        [header, ...good.slice(0, 5), "1,NaN,3", ...good].join("\n"),
        /:7: column 'b' is not a finite number: 'NaN'/,
      ],
      ["short.csv", [header, ...good.slice(0, 3)].join("\n"), /too few rows: 3 frames/],
      ["bad.npy", "not numpy", /not a \.npy file/],
    ];
    for (const [file, text, message] of cases) {
      const input = join(dir, file);
      writeFileSync(input, text);
      const r = train("--input", input, "--out", join(dir, "bad"));
      assert.equal(r.status, 1, file);
      assert.match(r.stderr, message, file);
    }
    const missing = train("--input", join(dir, "nope.csv"));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read file/);
    const badDrift = train("--drift-max=-1", "--features", "10", "--frames", "200");
    assert.equal(badDrift.status, 1);
    assert.match(
      badDrift.stderr,
      /'--drift-max' must be a number in \[0, 1000000000000\], got '-1'/,
    );
    const badAlpha = train("--baseline-alpha", "1.5", "--features", "10", "--frames", "200");
    assert.equal(badAlpha.status, 1);
    assert.match(badAlpha.stderr, /'--baseline-alpha' must be a number in \[0, 1\], got '1.5'/);
    const unknown = train("--frobnicate");
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /Unknown option '--frobnicate'/);
  });
});
