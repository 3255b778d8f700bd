// Loaders for the public labelled datasets as published: SKAB's CSV runs and Tennessee Eastman's .dat files.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** A file that is missing or not in the published format: the CLI prints the message and exits 1. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatasetError";
  }
}

/** One labelled run: `values` is row-major `[rows, features]`; `label[t]` is 1 on anomalous rows. */
export interface LabelledRun {
  /** Stable identifier, e.g. `valve1/3` or `d05`. */
  name: string;
  featureNames: string[];
  rows: number;
  values: Float64Array;
  label: Uint8Array;
  /** Rows `0 .. trainRows-1` are the training history; the test is the rest. */
  trainRows: number;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new DatasetError(
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

export const SKAB_GROUPS = ["valve1", "valve2", "other"] as const;
export const SKAB_SENSORS = 8;
export const SKAB_TRAIN_ROWS = 400;

/** Natural order for file stems: `2` before `10`. */
const byNumber = (a: string, b: string) =>
  Number.parseInt(a, 10) - Number.parseInt(b, 10) || a.localeCompare(b);

/**
 * Parses one SKAB CSV: `;`-separated, header `datetime;<8 sensors>;anomaly;changepoint`.
 * The label is the `anomaly` column (the outlier-detection problem of the leaderboard).
 */
export function parseSkabCsv(text: string, name: string, trainRows = SKAB_TRAIN_ROWS): LabelledRun {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length < 2) throw new DatasetError(`${name}: no data rows`);
  const header = lines[0].split(";").map((h) => h.trim());
  const iTime = header.indexOf("datetime");
  const iAnomaly = header.indexOf("anomaly");
  const iChange = header.indexOf("changepoint");
  if (iTime < 0 || iAnomaly < 0 || iChange < 0) {
    throw new DatasetError(
      `${name}: header must have 'datetime', 'anomaly' and 'changepoint' columns (';'-separated), got '${lines[0].slice(0, 120)}'`,
    );
  }
  const sensorCols = header
    .map((_, i) => i)
    .filter((i) => i !== iTime && i !== iAnomaly && i !== iChange);
  if (sensorCols.length !== SKAB_SENSORS) {
    throw new DatasetError(
      `${name}: expected ${SKAB_SENSORS} sensor columns, got ${sensorCols.length}`,
    );
  }
  const rows = lines.length - 1;
  const F = sensorCols.length;
  const values = new Float64Array(rows * F);
  const label = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const cells = lines[r + 1].split(";");
    if (cells.length !== header.length) {
      throw new DatasetError(
        `${name}: line ${r + 2} has ${cells.length} fields, the header ${header.length}`,
      );
    }
    for (let j = 0; j < F; j++) {
      const x = Number(cells[sensorCols[j]]);
      if (!Number.isFinite(x) || cells[sensorCols[j]].trim() === "") {
        throw new DatasetError(
          `${name}: line ${r + 2}, column '${header[sensorCols[j]]}': not a number ('${cells[sensorCols[j]]}')`,
        );
      }
      values[r * F + j] = x;
    }
    const a = Number(cells[iAnomaly]);
    if (a !== 0 && a !== 1)
      throw new DatasetError(
        `${name}: line ${r + 2}: anomaly must be 0 or 1, got '${cells[iAnomaly]}'`,
      );
    label[r] = a;
  }
  if (rows <= trainRows) {
    throw new DatasetError(
      `${name}: ${rows} rows, the protocol needs more than ${trainRows} (training rows)`,
    );
  }
  return { name, featureNames: sensorCols.map((i) => header[i]), rows, values, label, trainRows };
}

/** Loads SKAB's 34 labelled runs `data/{valve1,valve2,other}/*.csv` from the dataset root `dir`. */
export async function loadSkab(
  dir: string,
  options: { limitRows?: number } = {},
): Promise<LabelledRun[]> {
  const runs: LabelledRun[] = [];
  for (const group of SKAB_GROUPS) {
    const groupDir = join(dir, "data", group);
    let files: string[];
    try {
      files = (await readdir(groupDir)).filter((f) => f.endsWith(".csv"));
    } catch {
      throw new DatasetError(
        `${groupDir}: missing (expected SKAB's data/${group}/*.csv under ${dir})`,
      );
    }
    if (files.length === 0) throw new DatasetError(`${groupDir}: no .csv files`);
    files.sort((a, b) => byNumber(a, b));
    for (const file of files) {
      let text = await readText(join(groupDir, file));
      if (options.limitRows !== undefined)
        text = text
          .split("\n")
          .slice(0, options.limitRows + 1)
          .join("\n");
      runs.push(parseSkabCsv(text, `${group}/${file.replace(/\.csv$/, "")}`));
    }
  }
  return runs;
}

export const TEP_VARIABLES = 52;
export const TEP_FAULT_START = 160;
export const TEP_FAULTS = 21;
/** Faults known to be practically undetectable from the data (reported separately). */
export const TEP_UNDETECTABLE = [3, 9, 15] as const;

/** Parses whitespace-separated numbers into a `[rows, cols]` matrix with `cols` checked. */
export function parseDat(
  text: string,
  name: string,
  cols: number,
): { rows: number; values: Float64Array } {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const values = new Float64Array(lines.length * cols);
  for (const [r, line] of lines.entries()) {
    const cells = line.split(/\s+/);
    if (cells.length !== cols)
      throw new DatasetError(
        `${name}: line ${r + 1} has ${cells.length} numbers, expected ${cols}`,
      );
    for (let c = 0; c < cols; c++) {
      const x = Number(cells[c]);
      if (!Number.isFinite(x))
        throw new DatasetError(
          `${name}: line ${r + 1}, field ${c + 1}: not a number ('${cells[c]}')`,
        );
      values[r * cols + c] = x;
    }
  }
  return { rows: lines.length, values };
}

export interface TepData {
  featureNames: string[];
  /** `d00.dat` transposed: 500 normal rows for training. */
  train: { rows: number; values: Float64Array };
  /** `d00_te.dat` (all normal) then `d01_te` .. `d21_te` (faulty from row 160). */
  tests: { name: string; fault: number; rows: number; values: Float64Array; label: Uint8Array }[];
}

/** `XMEAS(1..41)` then `XMV(1..11)`, the published column order. */
export function tepFeatureNames(): string[] {
  return [
    ...Array.from({ length: 41 }, (_, i) => `XMEAS_${i + 1}`),
    ...Array.from({ length: 11 }, (_, i) => `XMV_${i + 1}`),
  ];
}

/** Loads TEP from `dir`: `d00.dat` (stored 52 x 500: transposed here), `d00_te.dat`, `dNN_te.dat`. */
export async function loadTep(dir: string, options: { limitRows?: number } = {}): Promise<TepData> {
  const V = TEP_VARIABLES;
  const trainPath = join(dir, "d00.dat");
  const trainText = await readText(trainPath);
  const firstLine = trainText.trim().split(/\r?\n/)[0] ?? "";
  const cols = firstLine.trim().split(/\s+/).length;
  const stored = parseDat(trainText, trainPath, cols);
  if (stored.rows !== V) {
    throw new DatasetError(
      `${trainPath}: expected ${V} lines (variables x samples, transposed), got ${stored.rows}`,
    );
  }
  const n = options.limitRows === undefined ? cols : Math.min(cols, options.limitRows);
  const train = new Float64Array(n * V);
  for (let v = 0; v < V; v++)
    for (let t = 0; t < n; t++) train[t * V + v] = stored.values[v * cols + t];
  const tests: TepData["tests"] = [];
  for (let fault = 0; fault <= TEP_FAULTS; fault++) {
    const name = `d${String(fault).padStart(2, "0")}_te`;
    const path = join(dir, `${name}.dat`);
    const m = parseDat(await readText(path), path, V);
    const rows = options.limitRows === undefined ? m.rows : Math.min(m.rows, options.limitRows);
    if (rows <= TEP_FAULT_START) {
      throw new DatasetError(
        `${path}: ${rows} samples, the protocol needs more than ${TEP_FAULT_START}`,
      );
    }
    const label = new Uint8Array(rows);
    if (fault > 0) label.fill(1, TEP_FAULT_START);
    tests.push({ name, fault, rows, values: m.values.slice(0, rows * V), label });
  }
  return { featureNames: tepFeatureNames(), train: { rows: n, values: train }, tests };
}

/** Which suites a dataset root holds: `skab/` and `tep/` subfolders. */
export async function availableSuites(dir: string): Promise<{ skab: boolean; tep: boolean }> {
  const isDir = async (p: string) => {
    try {
      return (await stat(p)).isDirectory();
    } catch {
      return false;
    }
  };
  return { skab: await isDir(join(dir, "skab", "data")), tep: await isDir(join(dir, "tep")) };
}
