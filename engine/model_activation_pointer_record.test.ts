// Activations killed between their history line and their pointer write: GET /models and an unchanged activation answer with the record the pointer holds, not the attempt.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema } from "../contracts/models_api.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";
import type { Activation } from "./infer/registry.ts";

/**
 * Activates `version` of `name` in a child process (`ModelRegistry.activate`, as `npm run train --
 * --activate` does) and kills it with SIGKILL once its history line is written, before its
 * pointer write: what a crash or `kill -9` there leaves.
 */
async function activateKilled(dir: string, name: string, version: string, by: string) {
  const code = `
    const { ModelRegistry } = await import(${JSON.stringify(new URL("./infer/registry.ts", import.meta.url).href)});
    const [dir, name, version, by] = process.argv.slice(1);
    const registry = new ModelRegistry(dir, {
      hooks: {
        activationRecorded: () => {
          process.stdout.write("recorded\\n");
          return new Promise(() => {});
        },
      },
    });
    await registry.activate(name, version, { by, reason: "killed before its pointer" });
    process.stdout.write("activated\\n");`;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", code, dir, name, version, by],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    out += chunk;
    if (out.includes("recorded\n")) child.kill("SIGKILL");
  });
  const [code_, signal] = await once(child, "exit");
  assert.equal(
    signal,
    "SIGKILL",
    `the child was to be killed mid-activation (exit ${code_}): ${out}`,
  );
  assert.equal(out, "recorded\n");
}

describe("an engine whose model's last activations were killed before their pointer moved", () => {
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
  ]);
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  let url: (path: string) => string;
  let pointer: Activation;

  before(async () => {
    // One attempt to switch to the second version, one to activate the first again.
    await activateKilled(reg.dir, "kiln", reg.metas[1].version, "Ana");
    await activateKilled(reg.dir, "kiln", reg.metas[0].version, "Bo");
    pointer = JSON.parse(await readFile(join(reg.dir, "kiln", "ACTIVE.json"), "utf8"));
    ({ url } = await reg.start());
  });

  test("the history keeps both attempts; the pointer still holds the first activation", async () => {
    const history = await reg.registry.activations("kiln");
    assert.deepEqual(
      history.map((a) => [a.version, a.by]),
      [
        [reg.metas[0].version, "train"],
        [reg.metas[1].version, "Ana"],
        [reg.metas[0].version, "Bo"],
      ],
    );
    assert.deepEqual(pointer, history[0]);
  });

  test("GET /models answers the pointer's record as the model's activation", async () => {
    const res = await fetch(url("/models"), { headers: admin });
    assert.equal(res.status, 200);
    const [kiln] = v.parse(modelsResponseSchema, await res.json()).models;
    assert.equal(kiln.active_version, reg.metas[0].version);
    assert.deepEqual(kiln.activation, pointer);
    assert.equal(kiln.registry_pointer, undefined);
  });

  test("activating the served version answers unchanged with the pointer's record", async () => {
    const res = await fetch(url("/models/kiln/activate"), {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ version: reg.metas[0].version, by: "Cy" }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.unchanged, true);
    assert.deepEqual(body.activation, pointer);
  });
});
