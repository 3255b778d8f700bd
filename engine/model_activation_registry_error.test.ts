// An engine whose registry pointer (ACTIVE.json) turns unreadable while it serves: GET /models says so, retraining answers the registry's error, scoring goes on.
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema } from "../contracts/models_api.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";

describe("an engine whose registry pointer cannot be read", () => {
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
  ]);
  let url: (path: string) => string;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

  before(async () => {
    ({ url } = await reg.start());
    // Torn by hand, a full disk or a bad restore: the file no longer names a version.
    await writeFile(join(reg.dir, "kiln", "ACTIVE.json"), "{trunc");
  });

  test("GET /models lists the model in the registry layout with the registry's error, not as flat", async () => {
    const res = await fetch(url("/models"), { headers: admin });
    assert.equal(res.status, 200);
    const [kiln] = v.parse(modelsResponseSchema, await res.json()).models;
    assert.equal(kiln.layout, "registry");
    assert.equal(kiln.active_version, reg.metas[0].version, "the served version goes on");
    assert.equal(kiln.registry_error?.code, "registry_entry_invalid");
    assert.match(kiln.registry_error?.message ?? "", /ACTIVE\.json does not name a version/);
    // The activation history is its own file: still listed.
    assert.equal(kiln.activation?.version, reg.metas[0].version);
  });

  test("retraining answers the registry's error, not a flat layout", async () => {
    const res = await fetch(url("/models/kiln/retrain"), { method: "POST", headers: admin });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(body.error, "registry_entry_invalid");
    assert.match(
      body.message,
      /^kiln cannot be retrained while its registry entry cannot be read: /,
    );
    assert.match(body.message, /ACTIVE\.json/);
    assert.doesNotMatch(body.message, /flat layout/);
  });

  // Last: it repairs what the tests above read as broken.
  test("activating a version rewrites the unreadable pointer, keeping the bad file aside and the history", async () => {
    const res = await fetch(url(`/models/kiln/activate`), {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ version: reg.metas[1].version, by: "Ana", reason: "repair" }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.activation.version, reg.metas[1].version);
    assert.equal(body.activation.from, reg.metas[0].version, "from the history's last record");
    assert.match(
      body.activation.reason,
      /^repair \(replaced an unreadable ACTIVE\.json, kept as ACTIVE\.json\.unreadable-/,
    );
    const kept = (await readdir(join(reg.dir, "kiln"))).filter((f) =>
      f.startsWith("ACTIVE.json.unreadable-"),
    );
    assert.equal(kept.length, 1);
    assert.equal(await readFile(join(reg.dir, "kiln", kept[0]), "utf8"), "{trunc");
    const list = v.parse(
      modelsResponseSchema,
      await (await fetch(url("/models"), { headers: admin })).json(),
    );
    const kiln = list.models.find((m) => m.name === "kiln")!;
    assert.equal(kiln.registry_error, undefined);
    assert.equal(kiln.active_version, reg.metas[1].version);
  });
});
