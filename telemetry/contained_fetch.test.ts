import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);

test("under Deno's telemetry a contained fetch leaves no span active in its caller; a plain one does", async () => {
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const probe = new URL("./_deno_fetch_probe.ts", import.meta.url).pathname;
  const { stdout } = await run(deno, ["run", "-A", probe], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      OTEL_DENO: "true",
      // Nothing listens there: the spans are made, their export fails quietly.
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
    },
    timeout: 60_000,
  });
  const lines = stdout.trim().split("\n");
  const of = (name: string) =>
    lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1));
  assert.deepEqual(of("contained"), ["none", "none", "none"], stdout);
  // What the wrapper is for: Deno leaves a plain fetch's span active, the same one after each.
  const plain = of("plain");
  assert.equal(plain.length, 3, stdout);
  assert.notEqual(plain[0], "none", stdout);
  assert.equal(new Set(plain).size, 1, stdout);
});
