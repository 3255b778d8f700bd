// The dataset loaders on small files written here in each dataset's published layout and format.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  availableSuites,
  DatasetError,
  loadSkab,
  loadTep,
  parseDat,
  parseSkabCsv,
  TEP_FAULT_START,
  TEP_VARIABLES,
} from "./datasets.ts";

// The real files live in ../shared/datasets (models/eval/real_data.real.test.ts reads them); these
// mirror them: SKAB `data/<group>/<n>.csv`, `;`-separated, a `datetime` column, labels `0.0`/`1.0`,
// CRLF line ends in some files and LF in others; TEP `d00.dat` transposed (52 lines), `dNN_te.dat`
// one sample per line, numbers as `%.7e` (two-digit exponent) separated by three spaces.

const SKAB_HEADER =
  "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;Voltage;Volume Flow RateRMS";
/** The published runs: file stems per group, and which files have CRLF line ends. */
const SKAB_FILES: Record<string, { stems: number[]; crlf: (n: number) => boolean }> = {
  valve1: { stems: [...Array(16).keys()], crlf: () => true },
  valve2: { stems: [...Array(4).keys()], crlf: () => true },
  other: { stems: Array.from({ length: 14 }, (_, i) => i + 1), crlf: (n) => n >= 11 },
};

/** A sensor reading as SKAB prints them (up to 6 significant digits, `32.0` for whole numbers). */
function skabValue(run: number, row: number, sensor: number): string {
  const x = Number(((sensor + 1) * 1.37 + Math.sin(run * 7 + row * 0.1 + sensor)).toPrecision(6));
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

/** Rows of one run: 401.. rows, an anomaly from `anomalyAt` to the end, the changepoint there. */
function skabCsv(run: number, rows: number, anomalyAt: number, eol: string): string {
  const lines = [`${SKAB_HEADER};anomaly;changepoint`];
  const t0 = Date.UTC(2020, 2, 9, 10, 14, 33);
  for (let r = 0; r < rows; r++) {
    const time = new Date(t0 + r * 1000).toISOString().slice(0, 19).replace("T", " ");
    const values = Array.from({ length: 8 }, (_, s) => skabValue(run, r, s));
    const anomaly = r >= anomalyAt ? "1.0" : "0.0";
    lines.push([time, ...values, anomaly, r === anomalyAt ? "1.0" : "0.0"].join(";"));
  }
  return lines.join(eol) + eol;
}

/** A number as the TEP files print it: `2.4987000e-01`. */
const tepNumber = (x: number) => x.toExponential(7).replace(/e([+-])(\d)$/, "e$10$2");
/** Sample `t` of variable `v` in file `file`: each variable at its own scale, as in the plant. */
const tepValue = (file: number, t: number, v: number) =>
  Number(tepNumber((0.25 + v * 97.3) * (1 + 0.01 * Math.sin(file * 3 + t * 0.7 + v))));

const TEP_TRAIN_SAMPLES = 500;
const TEP_TEST_SAMPLES = 200;
const D00 = -1;

let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "datasets-"));
  let run = 0;
  for (const [group, { stems, crlf }] of Object.entries(SKAB_FILES)) {
    await mkdir(join(root, "skab", "data", group), { recursive: true });
    for (const n of stems) {
      run++;
      // other/2's anomaly starts at row 104, inside the training rows, as published.
      const anomalyAt = group === "other" && n === 2 ? 104 : 420 + (run % 7);
      const text = skabCsv(run, 440 + run, anomalyAt, crlf(n) ? "\r\n" : "\n");
      await writeFile(join(root, "skab", "data", group, `${n}.csv`), text);
    }
  }
  // The separate normal run (no label columns): the loader does not read it.
  await mkdir(join(root, "skab", "data", "anomaly-free"), { recursive: true });
  await writeFile(
    join(root, "skab", "data", "anomaly-free", "anomaly-free.csv"),
    `${SKAB_HEADER}\r\n2020-02-08 13:30:47;0.202394;0.275154;2.16975;0.382638;90.6454;26.8508;238.852;122.664\r\n`,
  );
  await mkdir(join(root, "tep"));
  // d00.dat: one line per variable; the published first line has no leading spaces.
  const d00 = Array.from({ length: TEP_VARIABLES }, (_, v) => {
    const cells = Array.from({ length: TEP_TRAIN_SAMPLES }, (_, t) =>
      tepNumber(tepValue(D00, t, v)),
    );
    return `${v === 0 ? "" : "   "}${cells.join("   ")}`;
  });
  await writeFile(join(root, "tep", "d00.dat"), `${d00.join("\n")}\n`);
  for (let fault = 0; fault <= 21; fault++) {
    const lines = Array.from(
      { length: TEP_TEST_SAMPLES },
      (_, t) =>
        `   ${Array.from({ length: TEP_VARIABLES }, (_, v) => tepNumber(tepValue(fault, t, v))).join("   ")}`,
    );
    const name = `d${String(fault).padStart(2, "0")}_te.dat`;
    await writeFile(join(root, "tep", name), `${lines.join("\n")}\n`);
  }
});

after(() => rm(root, { recursive: true, force: true }));

describe("dataset loaders", () => {
  it("reject malformed files with a message naming the place", () => {
    const header = "datetime;a;b;c;d;e;f;g;h;anomaly;changepoint";
    const row = (x: string) => `2020-01-01 00:00:00;${x};1;1;1;1;1;1;1;0.0;0.0`;
    assert.throws(
      () => parseSkabCsv([header, row("1"), row("oops")].join("\n"), "bad", 1),
      (e: Error) => e instanceof DatasetError && /bad: line 3, column 'a'/.test(e.message),
    );
    assert.throws(
      () => parseSkabCsv("a,b,c\n1,2,3", "comma", 1),
      (e: Error) => e instanceof DatasetError && /'datetime'/.test(e.message),
    );
    assert.throws(
      () => parseSkabCsv([header, row("1")].join("\n"), "short", 400),
      (e: Error) => e instanceof DatasetError && /needs more than 400/.test(e.message),
    );
    assert.throws(
      () => parseDat("1 2 3\n4 5\n", "d.dat", 3),
      (e: Error) => e instanceof DatasetError && /line 2 has 2 numbers/.test(e.message),
    );
  });

  it("report a missing dataset directory", async () => {
    await assert.rejects(loadTep(join(root, "no-such-dir")), DatasetError);
    await assert.rejects(loadSkab(join(root, "no-such-dir")), /missing/);
    assert.deepEqual(await availableSuites(join(root, "no-such-dir")), { skab: false, tep: false });
    assert.deepEqual(await availableSuites(root), { skab: true, tep: true });
  });

  it("read SKAB's 34 runs in the published layout, CRLF and LF alike", async () => {
    const runs = await loadSkab(join(root, "skab"));
    assert.equal(runs.length, 34);
    // Natural order within a group: 2 before 10.
    assert.deepEqual(
      runs.slice(0, 4).map((r) => r.name),
      ["valve1/0", "valve1/1", "valve1/2", "valve1/3"],
    );
    assert.equal(runs[16].name, "valve2/0");
    assert.equal(runs[20].name, "other/1");
    assert.equal(runs.at(-1)?.name, "other/14");
    for (const [i, r] of runs.entries()) {
      assert.equal(r.featureNames.length, 8);
      assert.equal(r.rows, 440 + i + 1, r.name);
      assert.equal(r.trainRows, 400);
      assert.ok(
        r.values.every((x) => Number.isFinite(x)),
        r.name,
      );
    }
    assert.deepEqual(runs[0].featureNames.slice(0, 2), ["Accelerometer1RMS", "Accelerometer2RMS"]);
    assert.equal(runs[0].featureNames[7], "Volume Flow RateRMS");
    // Row-major [rows, 8]: row 1, sensor 2 of the first run.
    assert.equal(runs[0].values[8 + 2], Number(skabValue(1, 1, 2)));
    // The label is the `anomaly` column; other/2's starts inside the training rows.
    assert.equal(runs[0].label.indexOf(1), 420 + 1);
    const o2 = runs.find((r) => r.name === "other/2")!;
    assert.equal(o2.label.indexOf(1), 104);
    assert.equal(o2.label.at(-1), 1);
  });

  it("read a slice of SKAB's rows with limitRows", async () => {
    const runs = await loadSkab(join(root, "skab"), { limitRows: 410 });
    assert.equal(runs.length, 34);
    for (const r of runs) {
      assert.equal(r.rows, 410);
      assert.equal(r.values.length, 410 * 8);
    }
    // A CRLF file's last sliced row parses like any other.
    assert.equal(runs[0].values[409 * 8 + 7], Number(skabValue(1, 409, 7)));
  });

  it("read TEP with d00 transposed and faults from sample 160", async () => {
    const tep = await loadTep(join(root, "tep"));
    assert.equal(tep.featureNames.length, 52);
    assert.deepEqual([tep.featureNames[0], tep.featureNames[41]], ["XMEAS_1", "XMV_1"]);
    assert.equal(tep.train.rows, TEP_TRAIN_SAMPLES);
    // d00.dat stores variable 1 on its first line: samples 0 and 1 of XMEAS_1, then XMEAS_2.
    assert.equal(tep.train.values[0], tepValue(D00, 0, 0));
    assert.equal(tep.train.values[52], tepValue(D00, 1, 0));
    assert.equal(tep.train.values[1], tepValue(D00, 0, 1));
    assert.equal(tep.train.values[499 * 52 + 51], tepValue(D00, 499, 51));
    assert.equal(tep.tests.length, 22);
    assert.equal(tep.tests[0].name, "d00_te");
    assert.equal(tep.tests[0].label.indexOf(1), -1);
    for (const [fault, t] of tep.tests.entries()) {
      assert.equal(t.fault, fault);
      assert.equal(t.rows, TEP_TEST_SAMPLES);
      assert.equal(t.values[52 + 3], tepValue(fault, 1, 3));
      if (fault > 0) {
        assert.equal(t.label.indexOf(1), TEP_FAULT_START);
        assert.equal(t.label.indexOf(0, TEP_FAULT_START), -1);
      }
    }
    assert.equal(tep.tests[5].name, "d05_te");
  });

  it("read a slice of TEP with limitRows, and refuse one too short for the fault start", async () => {
    const tep = await loadTep(join(root, "tep"), { limitRows: 170 });
    assert.equal(tep.train.rows, 170);
    assert.equal(tep.train.values.length, 170 * 52);
    assert.equal(tep.train.values[169 * 52 + 7], tepValue(D00, 169, 7));
    for (const t of tep.tests) assert.equal(t.rows, 170);
    await assert.rejects(
      loadTep(join(root, "tep"), { limitRows: TEP_FAULT_START }),
      (e: Error) => e instanceof DatasetError && /needs more than 160/.test(e.message),
    );
  });
});
