// Repairing a pointer another process moved to a version that never served: the record keeps a rollback target that served, so a later corrupt active version falls back to it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import * as v from "valibot";
import { activateResponseSchema, modelsResponseSchema } from "../contracts/models_api.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";
import { rollbackTarget } from "./infer/registry.ts";

describe("an engine whose pointer another process moved to a version that does not load", () => {
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
  ]);
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const pointerFile = () => join(reg.dir, "kiln", "ACTIVE.json");
  let first: string;
  let second: string;

  before(async () => {
    first = reg.metas[0].version;
    second = reg.metas[1].version;
    await reg.registry.activate("kiln", second, { by: "Ana", reason: "roll forward" });
    // Checksummed, so it passes every check but loading: what a bad training run publishes.
    const graph = Buffer.from("not an onnx graph");
    await reg.registry.write(graph, {
      ...reg.metas[1],
      version: "garbage",
      onnx_sha256: createHash("sha256").update(graph).digest("hex"),
    });
  });

  test("re-activating the serving version keeps its rollback target, and a restart falls back to it", async () => {
    const { url } = await reg.start();
    const models = async () =>
      v.parse(modelsResponseSchema, await (await fetch(url("/models"), { headers: admin })).json())
        .models[0];
    // Another process (`npm run train -- --activate`) moves the pointer; the engine cannot follow.
    await reg.registry.activate("kiln", "garbage", { by: "cli", reason: "external" });
    await waitFor(
      async () => (await models()).registry_pointer?.version === "garbage",
      "GET /models to show the pointer not followed",
    );
    assert.equal((await models()).active_version, second);

    // The repair the README gives: activating the version that serves.
    const res = await fetch(url("/models/kiln/activate"), {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ version: second, by: "Ana", reason: "repair" }),
    });
    const body = v.parse(activateResponseSchema, await res.json());
    const pointer = JSON.parse(await readFile(pointerFile(), "utf8"));
    assert.deepEqual([pointer.version, pointer.from], [second, first], "garbage never served");
    assert.equal(body.from, pointer.from, "the answer's from is the recorded one");
    assert.deepEqual(body.activation, pointer);

    // A disk fault later: the next start serves the rollback target instead of exiting.
    await truncate(join(reg.dir, "kiln", second, "kiln.onnx"), 1000);
    const restarted = await reg.start();
    const listed = v.parse(
      modelsResponseSchema,
      await (await fetch(restarted.url("/models"), { headers: admin })).json(),
    ).models[0];
    assert.equal(listed.active_version, first);
  });
});

test("rollbackTarget: the pointer's version unless the caller serves another", () => {
  const history = [
    { name: "m", version: "b", from: "a", by: "x", at: "t", reason: "" },
    { name: "m", version: "bad", from: "b", by: "x", at: "t", reason: "" },
  ];
  assert.equal(rollbackTarget("b", "c", undefined, []), "b");
  assert.equal(rollbackTarget("b", "c", "b", []), "b");
  assert.equal(rollbackTarget(undefined, "c", "b", []), null);
  assert.equal(rollbackTarget("bad", "c", "b", history), "b");
  assert.equal(rollbackTarget("bad", "b", "b", history), "a");
  assert.equal(rollbackTarget("bad", "b", "b", []), null);
});
