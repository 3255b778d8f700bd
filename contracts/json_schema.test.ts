import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { renderJsonSchemas } from "./json_schema.ts";

test("committed JSON Schemas match the valibot contracts (run npm run schemas when this fails)", async () => {
  for (const [name, text] of Object.entries(renderJsonSchemas())) {
    const committed = await readFile(new URL(name, import.meta.url), "utf8");
    assert.equal(committed, text, `${name} is stale`);
  }
});

test("frame JSON Schema requires data and forbids unknown top-level keys", () => {
  const frame = JSON.parse(renderJsonSchemas()["frame.schema.json"]);
  assert.deepEqual(frame.required, ["data"]);
  assert.equal(frame.additionalProperties, false);
  assert.equal(frame.properties.data.additionalProperties.type, "number");
});
