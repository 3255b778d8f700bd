import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { InputError, loadSeries } from "./input.ts";

const dir = mkdtempSync(join(tmpdir(), "train-input-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("loadSeries", () => {
  it("loadSeries reads quoted CSV fields: names without their quotes, commas and quotes in them", async () => {
    const path = csv("quoted.csv", '"temp, inlet","p ""bar""",q\n1.5,"2",3\n"4", 5 ,"-6e1"\n');
    const series = await loadSeries(path);
    assert.deepEqual(series.featureNames, ["temp, inlet", 'p "bar"', "q"]);
    assert.equal(series.nFeatures, 3);
    assert.equal(series.nFrames, 2);
    assert.deepEqual(Array.from(series.values), [1.5, 2, 3, 4, 5, -60]);
  });

  it("loadSeries drops the byte order mark Excel writes before the first name, quoted or not", async () => {
    for (const header of ['"temp","p"', "temp,p"]) {
      const series = await loadSeries(csv("bom.csv", `\uFEFF${header}\n1,2\n`));
      assert.deepEqual(series.featureNames, ["temp", "p"], header);
    }
  });

  it("loadSeries names the line of a quote left open, and says quoted line breaks are not read", async () => {
    const path = csv("open.csv", '"a","b"\n1,2\n"3,4\n');
    await assert.rejects(loadSeries(path), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.match(
        error.message,
        /open\.csv:3: unbalanced double quote in field 1 .*line breaks inside quotes are not supported/,
      );
      return true;
    });
    const after = csv("after.csv", '"a"x,b\n1,2\n');
    await assert.rejects(
      loadSeries(after),
      /after\.csv:1: text after the closing quote of field 1/,
    );
  });
});
