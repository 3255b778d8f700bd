import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { outputFileProblem } from "./command_line.ts";

test("outputFileProblem names why a --json target could not be written, before any work", async () => {
  const dir = await mkdtemp(join(tmpdir(), "command-line-"));
  try {
    const file = join(dir, "a_file");
    await writeFile(file, "");
    assert.equal(await outputFileProblem(join(dir, "out.json")), undefined);
    assert.equal(await outputFileProblem(file), undefined, "an existing file is replaced");
    assert.equal(
      await outputFileProblem(join(dir, "no", "such", "out.json")),
      `folder ${join(dir, "no", "such")} does not exist`,
    );
    assert.equal(await outputFileProblem(join(file, "out.json")), `${file} is not a folder`);
    assert.equal(await outputFileProblem(dir), "it is a folder");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
