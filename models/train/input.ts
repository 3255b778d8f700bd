// Reads a user's normal history (.npy float32 [T, F] or .csv with a header row) into a dense series.
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { defaultFeatureNames } from "../../contracts/model.ts";
import type { TrainData } from "../featurewise/train.ts";

/** Bad training input: the CLI prints the message and exits with status 1. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

export interface LoadedSeries extends TrainData {
  featureNames: string[];
}

/** Loads `.npy` or `.csv` by extension. */
export async function loadSeries(path: string): Promise<LoadedSeries> {
  if (!path.endsWith(".npy") && !path.endsWith(".csv")) {
    throw new InputError(`${path}: unsupported input format (expected .npy or .csv)`);
  }
  // A folder named like a file would otherwise fail mid-read, as EISDIR without its path.
  const info = await stat(path).catch((err: Error) => {
    throw new InputError(`${path}: cannot read file (${err.message})`);
  });
  if (info.isDirectory()) throw new InputError(`${path}: is a folder, not a file`);
  if (path.endsWith(".npy")) return parseNpy(await readBytes(path), path);
  return await loadCsv(path);
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new InputError(`${path}: cannot read file (${(err as Error).message})`);
  }
}

/** Parses a NumPy `.npy` (v1-v3) holding a 2-D little-endian float32 or float64 array. */
export function parseNpy(bytes: Uint8Array, label = "input"): LoadedSeries {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) {
    throw new InputError(`${label}: not a .npy file (bad magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder("latin1").decode(
    bytes.subarray(headerStart, headerStart + headerLen),
  );
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new InputError(`${label}: malformed .npy header`);
  const dims = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (dims.length !== 2) {
    throw new InputError(
      `${label}: expected a 2-D array [frames, features], got shape (${shapeText})`,
    );
  }
  // Python 2 NumPy wrote longs as `300L`; NumPy still reads those headers, so do we.
  const bad = dims.find((d) => !/^\d+L?$/.test(d));
  if (bad !== undefined) {
    throw new InputError(
      `${label}: malformed .npy header: shape entries must be non-negative integers, got '${bad}' in (${shapeText})`,
    );
  }
  const [T, F] = dims.map((d) => Number.parseInt(d, 10));
  const width = descr === "<f4" ? 4 : descr === "<f8" ? 8 : 0;
  if (width === 0)
    throw new InputError(`${label}: dtype '${descr}' not supported (use float32 '<f4')`);
  const offset = headerStart + headerLen;
  if (bytes.length - offset < T * F * width) {
    throw new InputError(
      `${label}: truncated data (${bytes.length - offset} bytes for shape ${T}x${F})`,
    );
  }
  const values = new Float32Array(T * F);
  for (let i = 0; i < T * F; i++) {
    const x =
      width === 4 ? view.getFloat32(offset + 4 * i, true) : view.getFloat64(offset + 8 * i, true);
    // C order: i = t*F + f; Fortran order: i = f*T + t.
    const t = fortran ? i % T : Math.floor(i / F);
    const f = fortran ? Math.floor(i / T) : i % F;
    if (!Number.isFinite(x))
      throw new InputError(`${label}: non-finite value ${x} at row ${t}, column ${f}`);
    // A float64 beyond float32's range would be stored as Infinity.
    if (!Number.isFinite(Math.fround(x))) {
      throw new InputError(
        `${label}: value ${x} at row ${t}, column ${f} is outside the float32 range (about ±3.4e38)`,
      );
    }
    values[t * F + f] = x;
  }
  return { values, nFrames: T, nFeatures: F, featureNames: defaultFeatureNames(F) };
}

/**
 * Splits one CSV line into its fields, RFC 4180 style: a field in double quotes may hold commas,
 * `""` in it is one quote, and the quotes are not part of its value (Excel and historians quote
 * sensor names so). Spaces around a quoted field are dropped, like those around a plain one. A
 * quote inside a plain field is kept as it is. A quoted field cannot span lines here, so a quote
 * left open is an error that says so.
 *
 * @example splitQuoted('"temp, inlet","p",q', "x.csv:1"); // ["temp, inlet", "p", "q"]
 */
export function splitQuoted(line: string, where: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] !== '"') {
      const end = line.indexOf(",", i);
      cells.push(line.slice(i, end < 0 ? line.length : end));
      if (end < 0) return cells;
      i = end + 1;
      continue;
    }
    let value = "";
    let from = i + 1;
    for (;;) {
      const quote = line.indexOf('"', from);
      if (quote < 0) {
        throw new InputError(
          `${where}: unbalanced double quote in field ${cells.length + 1} (a quoted field must close on the same line: line breaks inside quotes are not supported)`,
        );
      }
      value += line.slice(from, quote);
      if (line[quote + 1] !== '"') {
        i = quote + 1;
        break;
      }
      value += '"';
      from = quote + 2;
    }
    cells.push(value);
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) return cells;
    if (line[i] !== ",") {
      throw new InputError(
        `${where}: text after the closing quote of field ${cells.length}: expected ',' after "${value}"`,
      );
    }
    i++;
  }
}

async function loadCsv(path: string): Promise<LoadedSeries> {
  const stream = createReadStream(path, { encoding: "utf8" });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (err) =>
      reject(new InputError(`${path}: cannot read file (${err.message})`)),
    );
  });
  await opened;
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let names: string[] | undefined;
  const rows: Float32Array[] = [];
  let lineNo = 0;
  try {
    for await (const read of lines) {
      lineNo++;
      // Excel's "CSV UTF-8" starts the file with a byte order mark: not part of the first name.
      const line = lineNo === 1 && read.startsWith("\uFEFF") ? read.slice(1) : read;
      if (line.trim() === "") continue;
      // Most rows are plain numbers: only a line with a double quote takes the slower path.
      const cells = line.includes('"') ? splitQuoted(line, `${path}:${lineNo}`) : line.split(",");
      if (!names) {
        names = cells.map((c) => c.trim());
        const bad = names.indexOf("");
        if (bad >= 0)
          throw new InputError(`${path}:${lineNo}: empty feature name in header column ${bad + 1}`);
        if (new Set(names).size !== names.length)
          throw new InputError(`${path}:${lineNo}: duplicate feature names in header`);
        continue;
      }
      if (cells.length !== names.length) {
        throw new InputError(
          `${path}:${lineNo}: ragged row: ${cells.length} values, header has ${names.length} columns`,
        );
      }
      const row = new Float32Array(cells.length);
      for (let j = 0; j < cells.length; j++) {
        const text = cells[j].trim();
        const x = text === "" ? Number.NaN : Number(text);
        if (!Number.isFinite(x)) {
          throw new InputError(
            `${path}:${lineNo}: column '${names[j]}' is not a finite number: '${text}'`,
          );
        }
        // Stored as float32: a value beyond its range would become Infinity.
        if (!Number.isFinite(Math.fround(x))) {
          throw new InputError(
            `${path}:${lineNo}: column '${names[j]}' is outside the float32 range (about ±3.4e38): '${text}'`,
          );
        }
        row[j] = x;
      }
      rows.push(row);
    }
  } catch (err) {
    // A read that fails after the file opened (a device, a file gone): still name the path.
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: cannot read file (${(err as Error).message})`);
  }
  if (!names) throw new InputError(`${path}: empty CSV (no header row)`);
  const F = names.length;
  const values = new Float32Array(rows.length * F);
  for (let t = 0; t < rows.length; t++) values.set(rows[t], t * F);
  return { values, nFrames: rows.length, nFeatures: F, featureNames: names };
}
