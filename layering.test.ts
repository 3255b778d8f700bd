// The layering of .dependency-cruiser.cjs, checked with dependency-cruiser on the real tree and on a planted violation.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = dirname(fileURLToPath(import.meta.url));
const DEPCRUISE = join(ROOT, "node_modules", ".bin", "depcruise");
const LAYERS = ["engine", "backend", "contracts", "models", "scoring", "telemetry"];

/** Runs dependency-cruiser in `cwd` with the project's rules; resolves with its exit code and report. */
async function cruise(cwd: string, paths: string[]): Promise<{ code: number; report: string }> {
  const args = [
    "--config",
    join(ROOT, ".dependency-cruiser.cjs"),
    "--output-type",
    "err",
    ...paths,
  ];
  try {
    const { stdout } = await promisify(execFile)(DEPCRUISE, args, { cwd, maxBuffer: 1 << 24 });
    return { code: 0, report: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, report: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

test("layering: no import cycle, layers point down, services never import each other", async () => {
  const { code, report } = await cruise(ROOT, [...LAYERS, "start.ts", "launch.ts"]);
  assert.equal(code, 0, report);
  assert.match(report, /no dependency violations found/);
});

test("layering refuses an evaluation importing the engine's windows, a cycle, and a service importing the other", async () => {
  const dir = await mkdtemp(join(tmpdir(), "layering-"));
  try {
    const files: Record<string, string> = {
      "engine/window/stream_windows.ts":
        'import "../../scoring/features.ts";\nexport const w = 1;\n',
      "engine/infer/mod.ts": "export const load = 1;\n",
      "scoring/features.ts": "export const f = 1;\n",
      // models/ may import engine/infer/mod.ts, nothing else of the engine.
      "models/eval/run.ts":
        'import "../../engine/infer/mod.ts";\nimport "../../engine/window/stream_windows.ts";\n',
      "backend/app.ts": 'import "../engine/infer/mod.ts";\n',
      "contracts/a.ts": 'import "./b.ts";\n',
      "contracts/b.ts": 'import "./a.ts";\n',
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(dir, dirname(path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    await copyFile(join(ROOT, "tsconfig.json"), join(dir, "tsconfig.json"));
    const { code, report } = await cruise(dir, [
      "engine",
      "models",
      "scoring",
      "backend",
      "contracts",
    ]);
    assert.notEqual(code, 0, report);
    assert.match(
      report,
      /models-import-no-service: models\/eval\/run\.ts → engine\/window\/stream_windows\.ts/,
    );
    assert.doesNotMatch(report, /models\/eval\/run\.ts → engine\/infer\/mod\.ts/);
    assert.match(report, /backend-never-imports-engine: backend\/app\.ts → engine\/infer\/mod\.ts/);
    assert.match(report, /no-circular: contracts\/a\.ts →\s+contracts\/b\.ts/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
