import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseModelMetadata } from "../../contracts/model.ts";
import { trainFeaturewise } from "../featurewise/train.ts";
import { buildArtifacts, modelVersion, writeArtifacts } from "./artifacts.ts";
import { plantSeries } from "./plant_series.ts";

const dir = mkdtempSync(join(tmpdir(), "train-artifacts-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const series = plantSeries(6, 300, 3, 1);
const trained = (seed: number) =>
  trainFeaturewise(series, { kind: "featurewise_ocsvm_svdd", seed });
const names = ["a", "b", "c", "d", "e", "f"];

describe("artifacts", () => {
  it("buildArtifacts gives a new version when only the served metadata changes", () => {
    const result = trained(1);
    const base = buildArtifacts("m", result, names, { kind: "test" });
    const again = buildArtifacts("m", result, names, { kind: "elsewhere" });
    const renamed = buildArtifacts("m", result, ["a", "b", "c", "d", "e", "temp_out"], {
      kind: "test",
    });
    const running = buildArtifacts(
      "m",
      result,
      names,
      { kind: "test" },
      {
        running: { feature: "a", op: ">", value: 0 },
      },
    );
    assert.equal(renamed.meta.onnx_sha256, base.meta.onnx_sha256, "the same graph");
    assert.equal(again.meta.version, base.meta.version, "the training record is not served");
    assert.notEqual(renamed.meta.version, base.meta.version);
    assert.notEqual(running.meta.version, base.meta.version);
    assert.deepEqual(running.meta.running, { feature: "a", op: ">", value: 0 });
    const retrained = buildArtifacts("m", trained(2), names, { kind: "test" });
    assert.notEqual(retrained.meta.version, base.meta.version, "another graph");
    // Read back from its file, in another field order, a document gives its own version.
    const { version, ...rest } = JSON.parse(JSON.stringify(running.meta));
    const reordered = parseModelMetadata({
      version,
      ...Object.fromEntries(Object.entries(rest).reverse()),
    });
    assert.equal(modelVersion(reordered), version);
  });

  it("writeArtifacts that fails leaves the model already there as it was", async () => {
    const out = join(dir, "flat");
    const old = buildArtifacts("m", trained(1), names, { kind: "test" });
    await writeArtifacts(out, old.onnx, old.meta);
    const before = ["m.onnx", "m.json"].map((f) => readFileSync(join(out, f)));
    const next = buildArtifacts("m", trained(2), names, { kind: "test" });
    assert.notDeepEqual(next.onnx, old.onnx);
    // A folder where the metadata's temporary file goes: the second write fails, as on a full disk.
    const blocker = join(out, `.m.json.${process.pid}.tmp`);
    mkdirSync(blocker);
    await assert.rejects(writeArtifacts(out, next.onnx, next.meta));
    assert.deepEqual(
      ["m.onnx", "m.json"].map((f) => readFileSync(join(out, f))),
      before,
      "the graph and the metadata are the old ones, byte for byte",
    );
    assert.deepEqual(readdirSync(out).sort(), [`.m.json.${process.pid}.tmp`, "m.json", "m.onnx"]);
    rmSync(blocker, { recursive: true });
    await writeArtifacts(out, next.onnx, next.meta);
    assert.deepEqual(readFileSync(join(out, "m.onnx")), Buffer.from(next.onnx));
    assert.equal(
      parseModelMetadata(JSON.parse(readFileSync(join(out, "m.json"), "utf8"))).version,
      next.meta.version,
    );
    assert.deepEqual(readdirSync(out).sort(), ["m.json", "m.onnx"], "no temporary file is left");
  });
});
