import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  watch,
  writeFileSync,
} from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import { parseModelMetadata } from "../../contracts/model.ts";
import { ModelRegistry, verifyVersion } from "../../engine/infer/mod.ts";
import { plantSeries } from "./plant_series.ts";

const dir = mkdtempSync(join(tmpdir(), "train-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CLI = new URL("./cli.ts", import.meta.url).pathname;
// Resolved here: from another working directory `--import tsx` would not find the package.
const TSX = import.meta.resolve("tsx");

/** The CLI, run from `cwd` (default this process's, the project root). */
function trainIn(
  cwd: string | undefined,
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", TSX, CLI, ...args], {
    cwd,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const train = (...args: string[]) => trainIn(undefined, ...args);

/** A usage error: exit 2, the message and the usage, before anything was trained. */
function assertUsageError(r: ReturnType<typeof train>, message: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.match(r.stderr, /usage: npm run train --/);
  assert.doesNotMatch(r.stderr, /simulating|reading|\n\s+at /, "nothing was trained");
}

/** A float32 (or float64) C-order .npy file; `shape` replaces the header's shape text. */
function npy(
  values: Float32Array | Float64Array,
  rows: number,
  cols: number,
  shape = `${rows}, ${cols}`,
): Uint8Array {
  const descr = values instanceof Float64Array ? "<f8" : "<f4";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape}), }`;
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
    const r = train("--input", input, "--out", out, "--model", "mine", "--flat");
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
    const r = train("--input", input, "--out", out, "--model", "plant_a_linear", "--flat");
    assert.equal(r.status, 0, r.stderr);
    await checkModel(out, "plant_a_linear", names);
    const meta = JSON.parse(readFileSync(join(out, "plant_a_linear.json"), "utf8"));
    assert.equal(meta.kind, "featurewise_ocsvm_linear");
  });

  /** The first 4 sensors of the plant as a CSV under `header`; `edit(t, row)` may change a row. */
  function plantCsv(file: string, header: string, edit?: (t: number, row: number[]) => void) {
    const lines = [header];
    for (let t = 0; t < 400; t++) {
      const row = Array.from(series.values.subarray(t * 40, t * 40 + 4));
      edit?.(t, row);
      lines.push(row.join(","));
    }
    const input = join(dir, file);
    writeFileSync(input, `${lines.join("\n")}\n`);
    return input;
  }

  it("train cli writes a new version when only the sensor names or the running condition change", async () => {
    const out = join(dir, "renamed");
    const before = plantCsv("names_before.csv", "s0,s1,s2,s3");
    const renamed = plantCsv("names_after.csv", "temp_in,temp_out,flow,pressure");
    const first = train("--input", before, "--out", out, "--model", "m1");
    assert.equal(first.status, 0, first.stderr);
    // Other sensor names: written, but activated only when asked to start the windows afresh.
    const refused = train("--input", renamed, "--out", out, "--model", "m1", "--activate");
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /m1@\S+ written; not active/);
    assert.match(
      refused.stderr,
      /train: m1@\S+ is written to .* but not activated: it reads 4 sensors \(4 of other names or order in the active one\) in windows of 5, the active \S+ 4 in windows of 5\. A running engine does not follow such a version, .*"reset_windows": true, or run again with --reset-windows/,
    );
    assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
    const second = train(
      "--input",
      renamed,
      "--out",
      out,
      "--model",
      "m1",
      "--activate",
      "--reset-windows",
    );
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /m1@\S+ already there; active/);
    // A condition every row meets: the same rows and graph, another served document.
    const running = train(
      "--input",
      renamed,
      "--out",
      out,
      "--model",
      "m1",
      "--running",
      "flow>-1e30",
    );
    assert.equal(running.status, 0, running.stderr);
    assert.match(running.stderr, /0 frames left out/);
    assert.match(running.stderr, /m1@\S+ written; not active/);
    const registry = new ModelRegistry(out);
    const model = await registry.model("m1");
    assert.equal(model.versions.length, 3);
    const metas = await Promise.all(
      model.versions.map(async (v) => verifyVersion(await registry.resolve("m1", v))),
    );
    assert.equal(new Set(metas.map((m) => m.onnx_sha256)).size, 1, "one graph");
    assert.deepEqual(metas[0].feature_names, ["s0", "s1", "s2", "s3"]);
    assert.deepEqual(metas[1].feature_names, ["temp_in", "temp_out", "flow", "pressure"]);
    assert.equal(metas[1].running, undefined);
    assert.deepEqual(metas[2].running, { feature: "flow", op: ">", value: -1e30 });
    assert.equal(model.active, metas[1].version);
    // The same input and options again: the same version, already there.
    const again = train("--input", renamed, "--out", out, "--model", "m1");
    assert.equal(again.status, 0, again.stderr);
    assert.match(
      again.stderr,
      new RegExp(`m1@${metas[1].version.replace(/[.+]/g, "\\$&")} already there; already active`),
    );
  });

  it("train cli names a folder it cannot write in one line, without a stack trace", () => {
    const out = join(dir, "blocked");
    mkdirSync(out, { recursive: true });
    // A file where the model's registry folder goes.
    writeFileSync(join(out, "m1"), "");
    const r = train(
      "--input",
      plantCsv("blocked.csv", "s0,s1,s2,s3"),
      "--out",
      out,
      "--model",
      "m1",
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^train: EEXIST: file already exists, mkdir '.*blocked\/m1'$/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  it("train cli warns of sensors that do not vary, trains on them and records them", () => {
    const out = join(dir, "constant");
    const input = plantCsv("constant.csv", "s0,stuck,s2,s3", (_t, row) => {
      row[1] = 5;
    });
    const r = train("--input", input, "--out", out, "--model", "m1", "--flat");
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /\[train\] warning: 1 of 4 sensors do not vary in the training data \(stuck\): the model will flag any change of them; leave them out of the input, or retrain once they vary/,
    );
    const meta = parseModelMetadata(JSON.parse(readFileSync(join(out, "m1.json"), "utf8")));
    assert.deepEqual(meta.feature_names, ["s0", "stuck", "s2", "s3"], "the sensor is kept");
    assert.deepEqual((meta.training.constant_sensors as { names: string[] }).names, ["stuck"]);
    const varying = train(
      "--input",
      plantCsv("varying.csv", "s0,s1,s2,s3"),
      "--out",
      join(dir, "varying"),
      "--model",
      "m1",
      "--flat",
    );
    assert.equal(varying.status, 0, varying.stderr);
    assert.doesNotMatch(varying.stderr, /warning/);
  });

  it("train cli does not warn of the running condition's sensor, constant on the running rows", () => {
    const out = join(dir, "runflag");
    // A 1/0 run flag: 1 on every row the model trains on.
    const input = plantCsv("runflag.csv", "s0,run,s2,s3", (t, row) => {
      row[1] = t % 10 === 0 ? 0 : 1;
    });
    const r = train(
      "--input",
      input,
      "--out",
      out,
      "--model",
      "m1",
      "--flat",
      "--running",
      "run>0.5",
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /40 frames left out/);
    assert.doesNotMatch(r.stderr, /warning/);
    const meta = parseModelMetadata(JSON.parse(readFileSync(join(out, "m1.json"), "utf8")));
    assert.equal(meta.training.constant_sensors, undefined);
    assert.deepEqual(meta.running, { feature: "run", op: ">", value: 0.5 });
  });

  it("train cli reads a CSV's time column as times, not a sensor, and refuses rows out of order", () => {
    const header = "timestamp,Motor Speed [rpm],s1,s2,s3";
    const input = plantCsv("timed.csv", header, (t, row) => {
      row.unshift(1_700_000_000 + t);
    });
    const out = join(dir, "timed");
    const r = train(
      "--input",
      input,
      "--out",
      out,
      "--model",
      "m1",
      "--flat",
      "--running",
      "Motor Speed [rpm]>-1e30",
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /time column 'timestamp': not a sensor/);
    assert.doesNotMatch(r.stderr, /warning/);
    const meta = parseModelMetadata(JSON.parse(readFileSync(join(out, "m1.json"), "utf8")));
    assert.deepEqual(meta.feature_names, ["Motor Speed [rpm]", "s1", "s2", "s3"]);
    assert.equal(meta.n_features, 4);
    assert.equal((meta.training.data as { time_column?: string }).time_column, "timestamp");
    assert.deepEqual(meta.running, { feature: "Motor Speed [rpm]", op: ">", value: -1e30 });
    // The same history newest first: refused, not trained into another model.
    const reversed = plantCsv("reversed.csv", header, (t, row) => {
      row.unshift(1_700_000_000 - t);
    });
    const back = train(
      "--input",
      reversed,
      "--out",
      join(dir, "reversed"),
      "--model",
      "m1",
      "--flat",
    );
    assert.equal(back.status, 1, back.stderr);
    assert.match(
      back.stderr,
      /^train: .*reversed\.csv:3: rows must be in increasing time order .*'1699999999' here is before '1700000000' on line 2/m,
    );
    assert.equal(existsSync(join(dir, "reversed", "m1.json")), false);
  });

  it("train cli --flat refuses an --out that holds the model in the registry layout", async () => {
    const out = join(dir, "layouts");
    const small = ["--features", "20", "--frames", "200", "--out", out];
    const first = train(...small, "--model", "mine");
    assert.equal(first.status, 0, first.stderr);
    const before = readdirSync(out);
    for (const extra of [[], ["--overwrite"]]) {
      assertUsageError(
        train(...small, "--model", "mine", "--flat", ...extra),
        /'--out' .*layouts holds mine\/ in the registry layout, which the engine serves instead of flat files: leave out '--flat'/,
      );
    }
    mkdirSync(join(out, "featurewise_ocsvm_linear"));
    assertUsageError(
      train(...small, "--kind", "linear"),
      /holds featurewise_ocsvm_linear\/ in the registry layout/,
    );
    assert.deepEqual(
      readdirSync(out).sort(),
      [...before, "featurewise_ocsvm_linear"].sort(),
      "no flat file was written",
    );
    assert.equal((await new ModelRegistry(out).resolve("mine")).layout, "registry");
  });

  it("train cli reads a CSV whose header quotes the sensor names", () => {
    const out = join(dir, "quoted");
    const input = plantCsv("quoted.csv", '"temp, inlet","p","q ""raw""",r');
    const r = train("--input", input, "--out", out, "--model", "m1", "--flat");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /400 frames x 4 features/);
    const meta = parseModelMetadata(JSON.parse(readFileSync(join(out, "m1.json"), "utf8")));
    assert.deepEqual(meta.feature_names, ["temp, inlet", "p", 'q "raw"', "r"]);
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

  it("train cli with --kind linear and no --model writes only the linear standard model", () => {
    const out = join(dir, "kind_linear");
    const r = train("--features", "20", "--frames", "200", "--kind", "linear", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), [
      "featurewise_ocsvm_linear.json",
      "featurewise_ocsvm_linear.onnx",
    ]);
    const meta = JSON.parse(readFileSync(join(out, "featurewise_ocsvm_linear.json"), "utf8"));
    assert.equal(meta.kind, "featurewise_ocsvm_linear");
  });

  it("train cli stops before training when --out or --publish cannot be used", async () => {
    const file = join(dir, "out_is_a_file");
    writeFileSync(file, "");
    assertUsageError(
      train("--features", "20", "--frames", "200", "--out", file),
      /'--out' .*out_is_a_file: is a file or under one, not a folder/,
    );
    // A port that was just free: nothing listens there.
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    server.close();
    await once(server, "close");
    const out = join(dir, "unpublished");
    const p = train(
      "--features",
      "20",
      "--frames",
      "200",
      "--model",
      "boiler",
      "--out",
      out,
      "--publish",
      `nats://127.0.0.1:${port}`,
    );
    assert.equal(p.status, 1);
    assert.match(p.stderr, /'--publish': cannot reach NATS at nats:\/\/127\.0\.0\.1:/);
    assert.doesNotMatch(p.stderr, /simulating/, "nothing was trained");
    assert.deepEqual(readdirSync(out), [], "nothing was written");
  });

  it("train cli writes versions into the registry, activating the first and then only when asked", async () => {
    const out = join(dir, "registry");
    const args = (seed: string) => [
      "--features",
      "20",
      "--frames",
      "200",
      "--seed",
      seed,
      "--model",
      "boiler",
      "--out",
      out,
    ];
    const first = train(...args("1"));
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /active \(was none\)/);
    const second = train(...args("2"));
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /not active/);
    const registry = new ModelRegistry(out);
    const model = await registry.model("boiler");
    assert.equal(model.versions.length, 2);
    const [v1, v2] = model.versions;
    assert.equal(model.active, v1);
    await checkModel(
      join(out, "boiler", v2),
      "boiler",
      (await verifyVersion(await registry.resolve("boiler", v2))).feature_names,
    );
    const third = train(...args("2"), "--activate", "--by", "ci");
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stderr, /already there; active \(was /);
    assert.equal((await registry.model("boiler")).active, v2);
    const again = train(...args("2"));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /already there; already active/);
    assert.deepEqual(
      (await registry.activations("boiler")).map((a) => [a.from, a.version, a.by]),
      [
        [null, v1, "train"],
        [v1, v2, "ci"],
      ],
    );
    const flatOnly = train(
      "--features",
      "20",
      "--frames",
      "200",
      "--flat",
      "--activate",
      "--model",
      "x",
      "--out",
      out,
    );
    assertUsageError(flatOnly, /'--activate' needs '--model' and the registry layout/);
  });

  it("train cli reads a Python 2 .npy header whose shape has long suffixes", () => {
    const input = join(dir, "py2.npy");
    writeFileSync(input, npy(series.values, 400, 40, "400L, 40L"));
    const r = train("--input", input, "--out", join(dir, "py2"), "--model", "py2", "--flat");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /400 frames x 40 features/);
  });

  it("train cli killed while writing a version leaves the registry as it was", async () => {
    const out = join(dir, "crash");
    const args = (seed: number) => [
      "--features",
      "300",
      "--frames",
      "200",
      "--seed",
      String(seed),
      "--model",
      "boiler",
      "--out",
      out,
    ];
    assert.equal(train(...args(1)).status, 0);
    const registry = new ModelRegistry(out);
    const before = await registry.model("boiler");
    const folder = join(out, "boiler");
    // Killed the moment its temporary folder appears: while it writes the graph and metadata.
    let caught = false;
    for (let seed = 2; seed < 8 && !caught; seed++) {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "models/train/cli.ts", ...args(seed)],
        { stdio: "ignore" },
      );
      const watcher = watch(folder, (_event, file) => {
        if (String(file).startsWith(".incoming-")) child.kill("SIGKILL");
      });
      const [, signal] = (await once(child, "exit")) as [number | null, string | null];
      watcher.close();
      caught = signal === "SIGKILL" && readdirSync(folder).some((f) => f.startsWith(".incoming-"));
    }
    assert.ok(caught, "a run was killed mid-write");
    const after = await registry.model("boiler");
    assert.deepEqual(after, before, "no half-written version is listed, the pointer did not move");
    const ref = await registry.resolve("boiler");
    const meta = await verifyVersion(ref);
    const session = await ort.InferenceSession.create(readFileSync(join(ref.dir, "boiler.onnx")));
    assert.deepEqual(session.inputNames, [meta.input_name]);
    // The next run writes its version as if nothing had happened.
    assert.equal(train(...args(9)).status, 0);
    assert.equal((await registry.model("boiler")).versions.length, 2);
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
      [
        "huge.csv",
        [header, ...good.slice(0, 5), "1,1e39,3", ...good].join("\n"),
        /:7: column 'b' is outside the float32 range \(about ±3\.4e38\): '1e39'/,
      ],
    ];
    for (const [file, text, message] of cases) {
      const input = join(dir, file);
      writeFileSync(input, text);
      const r = train("--input", input, "--out", join(dir, "bad"));
      assert.equal(r.status, 1, file);
      assert.match(r.stderr, message, file);
    }
    const npyCases: [string, Uint8Array, RegExp][] = [
      [
        "huge.npy",
        npy(
          Float64Array.from({ length: 300 }, (_, i) => (i === 7 ? 1e39 : i)),
          100,
          3,
        ),
        /value 1e\+39 at row 2, column 1 is outside the float32 range/,
      ],
      [
        "negative.npy",
        npy(new Float32Array(300), 100, 3, "-100, 3"),
        /shape entries must be non-negative integers, got '-100'/,
      ],
      [
        "fraction.npy",
        npy(new Float32Array(300), 100, 3, "100.5, 3"),
        /shape entries must be non-negative integers, got '100\.5'/,
      ],
    ];
    for (const [file, bytes, message] of npyCases) {
      const input = join(dir, file);
      writeFileSync(input, bytes);
      const r = train("--input", input, "--out", join(dir, "bad"));
      assert.equal(r.status, 1, file);
      assert.match(r.stderr, message, file);
    }
    const tooShortForAuto = join(dir, "auto_short.csv");
    writeFileSync(tooShortForAuto, [header, ...good.slice(0, 120)].join("\n"));
    const auto = train("--input", tooShortForAuto, "--auto", "--out", join(dir, "bad"));
    assert.equal(auto.status, 1);
    assert.match(auto.stderr, /'--auto' needs at least 125 rows .*, got 120/);
    assert.doesNotMatch(auto.stderr, /RangeError|\n\s+at /);
    const missing = train("--input", join(dir, "nope.csv"), "--out", join(dir, "bad"));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.csv: cannot read file/);
    // A folder named like an input file: its path, not a bare EISDIR.
    for (const name of ["folder.csv", "folder.npy"]) {
      mkdirSync(join(dir, name));
      const folder = train("--input", join(dir, name), "--out", join(dir, "bad"));
      assert.equal(folder.status, 1, folder.stderr);
      assert.match(
        folder.stderr,
        new RegExp(`train: .*${name.replace(".", "\\.")}: is a folder, not a file`),
      );
      assert.doesNotMatch(folder.stderr, /EISDIR|\n\s+at /);
    }
  });

  it("train cli refuses mistakes in its arguments with the usage and exit 2, before training", () => {
    const out = join(dir, "usage");
    const cases: [string[], RegExp][] = [
      [["--drift-max=-1"], /'--drift-max' must be a number in \[0, 1000000000000\], got '-1'/],
      [["--baseline-alpha", "1.5"], /'--baseline-alpha' must be a number in \[0, 1\], got '1.5'/],
      [["--frobnicate"], /train: Unknown option '--frobnicate'/],
      [["--kind", "rbf"], /'--kind' must be svdd or linear, got 'rbf'/],
      [["--running", "pump"], /'--running': /],
      [["--model", "x", "--overwrite"], /'--overwrite' applies only to flat files/],
    ];
    for (const [args, message] of cases) {
      assertUsageError(
        train("--features", "10", "--frames", "200", "--out", out, ...args),
        message,
      );
    }
    const csv = join(dir, "usage.csv");
    writeFileSync(csv, "a,b\n1,2\n");
    assertUsageError(
      train("--input", csv, "--features", "10", "--out", out),
      /'--features', '--frames' and '--plant-seed' apply only without '--input'/,
    );
    assert.equal(existsSync(out), false, "nothing was written");
  });

  it("train cli needs --out and never replaces flat models in place without --overwrite", () => {
    // Run where `models/` would be the default, as `npm run train` runs in the project.
    const cwd = join(dir, "project");
    mkdirSync(cwd);
    assertUsageError(
      trainIn(cwd, "--features", "20", "--frames", "200"),
      /'--out DIR' is required/,
    );
    assert.deepEqual(readdirSync(cwd), [], "no models/ was written");

    const out = join(dir, "served");
    mkdirSync(out);
    writeFileSync(join(out, "featurewise_ocsvm.onnx"), "served");
    writeFileSync(join(out, "mine.json"), "served");
    const small = ["--features", "20", "--frames", "200", "--out", out];
    assertUsageError(
      train(...small),
      /'--out' .*served already holds featurewise_ocsvm\.onnx: add '--overwrite' to replace them/,
    );
    assertUsageError(
      train(...small, "--model", "mine", "--flat"),
      /already holds mine\.json: add '--overwrite'/,
    );
    assert.equal(readFileSync(join(out, "featurewise_ocsvm.onnx"), "utf8"), "served");
    assert.equal(readFileSync(join(out, "mine.json"), "utf8"), "served");
    const replaced = train(...small, "--kind", "svdd", "--overwrite");
    assert.equal(replaced.status, 0, replaced.stderr);
    assert.notEqual(readFileSync(join(out, "featurewise_ocsvm.onnx"), "utf8"), "served");
  });

  it("train cli refuses --model . and .. before training, in both layouts", () => {
    for (const name of [".", "..", "a..b", ".hidden", "trailing."]) {
      for (const layout of [[], ["--flat"]]) {
        const out = join(dir, "dots", "out");
        const r = train(
          "--features",
          "20",
          "--frames",
          "200",
          "--model",
          name,
          "--out",
          out,
          ...layout,
        );
        assertUsageError(
          r,
          new RegExp(`'--model' must be .*, got '${name.replaceAll(".", "\\.")}'`),
        );
        assert.equal(
          existsSync(join(dir, "dots")),
          false,
          `${name} ${layout}: nothing was written`,
        );
      }
    }
  });
});
