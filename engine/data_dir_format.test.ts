// DATA_DIR's layout marker: written on a new or earlier release's folder, and a newer engine's folder refused, in-process and by the real engine process.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { freePort } from "../backend/_test/free_port.ts";
import { runUntilExit } from "../backend/_test/run_until_exit.ts";
import {
  claimDataDirFormat,
  DATA_DIR_FORMAT,
  DataDirFormatError,
  FORMAT_FILE,
} from "./data_dir_format.ts";

const ROOT = new URL("../", import.meta.url).pathname;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "data-dir-format-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const marker = async (dataDir: string) =>
  JSON.parse(await readFile(join(dataDir, FORMAT_FILE), "utf8"));

test("a new DATA_DIR, and one an earlier release kept without a marker, get this engine's format", async () => {
  const fresh = join(dir, "fresh", "engine");
  await claimDataDirFormat(fresh);
  assert.deepEqual(await marker(fresh), { format: DATA_DIR_FORMAT });

  const earlier = join(dir, "earlier");
  await mkdir(join(earlier, "incidents-default"), { recursive: true });
  await writeFile(join(earlier, "alerts.log"), "");
  await claimDataDirFormat(earlier);
  assert.deepEqual(await marker(earlier), { format: DATA_DIR_FORMAT });
  // Claimed again (a restart): unchanged.
  await claimDataDirFormat(earlier);
  assert.deepEqual(await marker(earlier), { format: DATA_DIR_FORMAT });
});

test("a DATA_DIR a newer engine laid out, or whose marker is not one, is refused and left as it was", async () => {
  const newer = join(dir, "newer");
  await mkdir(newer, { recursive: true });
  await writeFile(join(newer, FORMAT_FILE), JSON.stringify({ format: DATA_DIR_FORMAT + 1 }));
  await assert.rejects(
    claimDataDirFormat(newer),
    (error: Error) =>
      error instanceof DataDirFormatError &&
      error.message.includes(`'DATA_DIR' ${newer} was laid out by a newer engine`) &&
      error.message.includes(`format ${DATA_DIR_FORMAT + 1}`),
  );
  assert.deepEqual(await marker(newer), { format: DATA_DIR_FORMAT + 1 });

  for (const text of ["{", "[]", '{"format":"1"}', '{"format":0}', "null"]) {
    const odd = join(dir, "odd");
    await mkdir(odd, { recursive: true });
    await writeFile(join(odd, FORMAT_FILE), text);
    await assert.rejects(claimDataDirFormat(odd), /is not a DATA_DIR format marker/, text);
    assert.equal(await readFile(join(odd, FORMAT_FILE), "utf8"), text);
  }
});

test("the engine process on a newer engine's DATA_DIR stops at start with one line naming it", async () => {
  const newer = join(dir, "newer-process");
  await mkdir(newer, { recursive: true });
  await writeFile(join(newer, FORMAT_FILE), JSON.stringify({ format: DATA_DIR_FORMAT + 1 }));
  const { code, output } = await runUntilExit("engine/main.ts", {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(await freePort()),
    DEFAULT_DEVICE: "cpu",
    MODEL_DIR: join(ROOT, "models"),
    DATA_DIR: newer,
  });
  assert.equal(code, 1, output);
  assert.match(output, /engine: 'DATA_DIR' \S+ was laid out by a newer engine/);
  // Nothing of its own was written beside the newer engine's files.
  assert.deepEqual(await readdir(newer), [FORMAT_FILE]);
  assert.deepEqual(await marker(newer), { format: DATA_DIR_FORMAT + 1 });
});

test("engines sharing a DATA_DIR claim it at once, each with its own temporary file", async () => {
  const shared = join(dir, "shared");
  await Promise.all(Array.from({ length: 16 }, () => claimDataDirFormat(shared)));
  assert.deepEqual(await marker(shared), { format: DATA_DIR_FORMAT });
  assert.deepEqual(await readdir(shared), [FORMAT_FILE], "no temporary file left");
});
