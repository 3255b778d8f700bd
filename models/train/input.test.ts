import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { InputError, loadSeries } from "./input.ts";

const dir = mkdtempSync(join(tmpdir(), "train-input-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, text: string | Uint8Array): string {
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

describe("loadSeries reads CSV text as UTF-8 only", () => {
  it("loadSeries refuses a Windows-1252 header, naming the line, the column and what to do", async () => {
    // "Temp 0 [°C]" as Excel's plain "CSV" writes it on Windows: ° is the single byte 0xb0.
    const bytes = Buffer.concat([
      Buffer.from("p,Temp 0 ["),
      Buffer.from([0xb0]),
      Buffer.from("C]\n1,2\n3,4\n"),
    ]);
    await assert.rejects(loadSeries(csv("cp1252.csv", bytes)), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.match(
        error.message,
        /cp1252\.csv:1: not UTF-8 text: byte 0xb0 in header column 2 \(it reads "Temp 0 \[\uFFFDC\]"\): save the file as UTF-8/,
      );
      return true;
    });
    const row = Buffer.concat([
      Buffer.from("a,b\r\n1,2\r\n3,"),
      Buffer.from([0xe9]),
      Buffer.from("\r\n"),
    ]);
    await assert.rejects(
      loadSeries(csv("row.csv", row)),
      /row\.csv:3: not UTF-8 text: byte 0xe9 in column 2 /,
    );
  });

  it("loadSeries decodes a character whose bytes straddle two reads of the file", async () => {
    // The file is read in 64 KiB chunks: put each character's first byte last in the first one.
    for (const char of ["°", "€", "𝔸"]) {
      const name = "x".repeat(65536 - 1) + char;
      const series = await loadSeries(csv("split.csv", `${name},b\n1,2\n`));
      assert.deepEqual(series.featureNames, [name, "b"], char);
    }
    // A \r\n whose \r ends the first chunk is one line break: the bad value is on line 3.
    const crlf = `${"y".repeat(65536 - 3)},b\r\n1,2\r\n3,x\r\n`;
    await assert.rejects(
      loadSeries(csv("crlf.csv", crlf)),
      /crlf\.csv:3: column 'b' is not a finite number: 'x'/,
    );
  });
});

describe("loadSeries and a CSV's time column", () => {
  it("loadSeries reads a column named like a time column as the rows' times, not as a sensor", async () => {
    for (const name of ["timestamp", "Time", "DATE", "datetime", "ts"]) {
      const series = await loadSeries(
        csv("t.csv", `a,${name},b\n1,1700000000,2\n3,1700000001,4\n`),
      );
      assert.deepEqual(series.featureNames, ["a", "b"], name);
      assert.equal(series.timeColumn, name);
      assert.equal(series.nFeatures, 2);
      assert.deepEqual(Array.from(series.values), [1, 2, 3, 4]);
      assert.deepEqual(series.warnings, []);
    }
    const named = await loadSeries(csv("clock.csv", "clock,a\n5,1\n6,2\n"), {
      timeColumn: "clock",
    });
    assert.deepEqual(named.featureNames, ["a"]);
    assert.equal(named.timeColumn, "clock");
    await assert.rejects(
      loadSeries(csv("clock.csv", "clock,a\n5,1\n"), { timeColumn: "when" }),
      /clock\.csv:1: '--time-column' "when" is not a column of the header/,
    );
    await assert.rejects(
      loadSeries(csv("two.csv", "date,time,a\n1,2,3\n")),
      /two\.csv:1: more than one column is named like a time column: 'date' \(column 1\), 'time' \(column 2\)/,
    );
  });

  it("loadSeries refuses rows out of time order or repeated, naming the line and both times", async () => {
    const newestFirst = "timestamp,a\n1700000002,1\n1700000001,2\n1700000000,3\n";
    await assert.rejects(loadSeries(csv("rev.csv", newestFirst)), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.match(
        error.message,
        /rev\.csv:3: rows must be in increasing time order .*'1700000001' here is before '1700000002' on line 2/,
      );
      return true;
    });
    await assert.rejects(
      loadSeries(csv("dup.csv", "ts,a\n1,1\n2,1\n\n2,1\n")),
      /dup\.csv:5: .*'2' here is the same time as '2' on line 3/,
    );
  });

  it("loadSeries reads ISO 8601 date-times in the time column and compares them as instants", async () => {
    const text = [
      "datetime,a",
      "2024-05-01T12:00:00Z,1",
      "2024-05-01 12:00:00.5,2",
      "2024-05-01T14:00:01+02:00,3",
      "2024-05-01T12:00:02+0000,4",
      "2024-05-01T12:00:02.250Z,5",
    ].join("\n");
    const series = await loadSeries(csv("iso.csv", text));
    assert.deepEqual(series.featureNames, ["a"]);
    assert.deepEqual(Array.from(series.values), [1, 2, 3, 4, 5]);
    const days = await loadSeries(csv("days.csv", "Date,a\n2024-05-01,1\n2024-05-02,2\n"));
    assert.deepEqual(days.featureNames, ["a"]);
    // 14:00 at +03:00 is 11:00Z, before the row above it.
    await assert.rejects(
      loadSeries(csv("zone.csv", "time,a\n2024-05-01T12:00:00Z,1\n2024-05-01T14:00:00+03:00,2\n")),
      /zone\.csv:3: .*'2024-05-01T14:00:00\+03:00' here is before '2024-05-01T12:00:00Z' on line 2/,
    );
    await assert.rejects(
      loadSeries(csv("bad.csv", "time,a\n2024-13-01T00:00:00Z,1\n")),
      /bad\.csv:2: time column 'time' must hold numbers \(epoch seconds or ms\) or ISO 8601 date-times/,
    );
    await assert.rejects(
      loadSeries(csv("mixed.csv", "time,a\n2024-05-01T00:00:00Z,1\n1714521601,2\n")),
      /mixed\.csv:3: time column 'time' mixes numbers and ISO 8601 date-times/,
    );
  });

  it("loadSeries without a time column warns once of columns that increase on every row", async () => {
    // Epoch seconds a second apart: equal in float32, so compared as read.
    const rows = ["clock,a,index"];
    for (let t = 0; t < 50; t++) rows.push(`${1_700_000_000 + t},${Math.sin(t)},${t}`);
    const series = await loadSeries(csv("rising.csv", `${rows.join("\n")}\n`));
    assert.deepEqual(series.featureNames, ["clock", "a", "index"]);
    assert.equal(series.warnings?.length, 1);
    assert.match(
      series.warnings?.[0] ?? "",
      /rising\.csv: columns 'clock', 'index' increase on every row, like a clock or a row index: .*'--time-column NAME'/,
    );
    const flat = await loadSeries(csv("flat.csv", "a,b\n1,2\n3,2\n2,1\n"));
    assert.deepEqual(flat.warnings, []);
  });
});

describe("loadSeries and the header's names", () => {
  it("loadSeries names the first repeated name and both its columns", async () => {
    await assert.rejects(
      loadSeries(csv("dupname.csv", "a,b,c,b,a\n1,2,3,4,5\n")),
      /dupname\.csv:1: duplicate feature name 'b' in header columns 2 and 4/,
    );
  });
});
