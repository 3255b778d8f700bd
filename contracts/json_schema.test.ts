import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { renderJsonSchemas } from "./json_schema.ts";

/** `npm run schemas ARGS` under the runtime running this test (Node with tsx, or Deno). */
function schemasCli(...args: string[]) {
  const script = fileURLToPath(new URL("./json_schema.ts", import.meta.url));
  const runtime = "Deno" in globalThis ? ["run", "-A", script] : ["--import", "tsx", script];
  return spawnSync(process.execPath, [...runtime, ...args], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    encoding: "utf8",
  });
}

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

test("npm run schemas refuses an unknown flag and answers --help, writing no schema", () => {
  const files = Object.keys(renderJsonSchemas()).map((name) =>
    fileURLToPath(new URL(name, import.meta.url)),
  );
  const written = () => files.map((file) => statSync(file).mtimeMs);
  const before = written();
  const typo = schemasCli("--chek");
  assert.equal(typo.status, 2, typo.stderr);
  assert.match(typo.stderr, /^schemas: Unknown option '--chek'/);
  assert.match(typo.stderr, /usage: npm run schemas/);
  const help = schemasCli("--help");
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: npm run schemas \[-- --check\]/);
  assert.deepEqual(written(), before, "no schema file was written");
  const check = schemasCli("--check");
  assert.equal(check.status, 0, check.stderr);
});
