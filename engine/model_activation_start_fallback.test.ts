// An engine started on a registry whose active version is corrupt: it serves the pointer's rollback target, says so, and leaves the pointer to an operator.
import assert from "node:assert/strict";
import { readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema } from "../contracts/models_api.ts";
import { spawnEngine } from "./_test/engine_process.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";

/** A version string as it reads in a regular expression. */
const quoted = (version: string) => version.replaceAll(".", "\\.").replaceAll("+", "\\+");

describe("an engine whose active version is corrupt at start", () => {
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
    { features: 6, name: "pack" },
  ]);
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  // kiln is routed beside the default model: one model's bad version must not stop the other.
  const env = { DEFAULT_MODEL_NAME: "pack", MODEL_ROUTES: "kiln-*=kiln" };
  const pointerFile = () => join(reg.dir, "kiln", "ACTIVE.json");
  let url: (path: string) => string;
  let logs: () => Record<string, unknown>[];
  let first: string;
  let second: string;

  const models = async () =>
    v.parse(modelsResponseSchema, await (await fetch(url("/models"), { headers: admin })).json())
      .models;

  before(async () => {
    first = reg.metas[0].version;
    second = reg.metas[1].version;
    await reg.registry.activate("kiln", second, { by: "Ana", reason: "roll forward" });
    // A disk fault truncates the active graph: its sha256 no longer is the metadata's.
    await truncate(join(reg.dir, "kiln", second, "kiln.onnx"), 1000);
  });

  test("serves the pointer's rollback target, logs why at error and shows the pointer in GET /models", async () => {
    const pointer = await readFile(pointerFile(), "utf8");
    const started = await reg.start(env);
    url = started.url;
    logs = () => started.engine.logs();
    // Once the follower has tried the pointer's version (every 2 s) and refused it for good.
    const kiln = await waitFor(
      async () =>
        (await models()).find(
          (m) => m.name === "kiln" && m.registry_pointer?.following === "refused",
        ),
      "GET /models to show kiln's pointer refused",
    );
    assert.equal(kiln.active_version, first, "the rollback target serves");
    assert.equal(kiln.registry_pointer?.version, second);
    assert.match(
      kiln.registry_pointer?.error ?? "",
      new RegExp(
        `sha256 \\w+ is not the metadata's .*; its rollback target ${quoted(first)} \\(the pointer's from\\) serves until a version is activated$`,
      ),
    );
    assert.deepEqual(kiln.activation, JSON.parse(pointer), "the pointer's record");
    assert.equal(await readFile(pointerFile(), "utf8"), pointer, "the pointer is not moved");
    const pack = (await models()).find((m) => m.name === "pack");
    assert.equal(pack?.active_version, reg.metas[2].version);
    assert.equal(pack?.registry_pointer, undefined);

    const said = logs().filter((l) => l.level === "error");
    const fellBack = said.filter((l) => /active version cannot be loaded/.test(String(l.msg)));
    assert.equal(fellBack.length, 1, JSON.stringify(said));
    assert.deepEqual(
      [fellBack[0].model, fellBack[0].version, fellBack[0].serving],
      ["kiln", second, first],
    );
    // A definitive refusal: tried once, never again (the state above is `refused` for good).
    const followed = said.filter((l) => /cannot be followed/.test(String(l.msg)));
    assert.equal(followed.length, 1, JSON.stringify(said));
    assert.equal(followed[0].retry_ms, undefined);
  });

  test("activating a version repairs the pointer", async () => {
    const res = await fetch(url("/models/kiln/activate"), {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ version: first, by: "Ana", reason: "repair" }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const pointer = JSON.parse(await readFile(pointerFile(), "utf8"));
    // The truncated version never served: no rollback target (nor had `first` one before).
    assert.deepEqual([pointer.version, pointer.from, pointer.by], [first, null, "Ana"]);
    assert.equal(body.from, first, "the answer names the version that served before");
    const kiln = (await models()).find((m) => m.name === "kiln");
    assert.equal(kiln?.active_version, first);
    assert.equal(kiln?.registry_pointer, undefined);
    assert.deepEqual(kiln?.activation, pointer);
  });

  // Last: it breaks the version the tests above serve.
  test("exits naming the active version when it has no rollback target that served", async () => {
    // The pointer now names `first`, with no `from`: the truncated `second` never served.
    await truncate(join(reg.dir, "kiln", first, "kiln.onnx"), 500);
    const engine = spawnEngine("node", {
      MODEL_DIR: reg.dir,
      NESTJS_URL: reg.sink.origin,
      ...env,
    });
    assert.equal(await engine.exited, 1);
    assert.match(
      engine.output(),
      new RegExp(`engine: cannot load model kiln: kiln@${quoted(first)} .*sha256[^\n]*\n$`),
    );
    assert.doesNotMatch(engine.output(), /rollback target/);
  });
});
