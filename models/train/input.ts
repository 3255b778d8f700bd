// Reads a user's normal history (.npy float32 [T, F] or .csv with a header row) into a dense series.
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
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
  /** The CSV column read as the rows' times (not a sensor), when there was one. */
  timeColumn?: string;
  /** Things about the input the user should hear of, that do not stop training. */
  warnings?: string[];
}

export interface LoadOptions {
  /** The CSV column holding the rows' times; without it, one named like {@link TIME_NAMES}. */
  timeColumn?: string;
}

/**
 * Header names (compared in lower case) read as a CSV's time column, not as sensors: its values
 * must be numbers or ISO 8601 date-times, increasing from row to row.
 */
export const TIME_NAMES: ReadonlySet<string> = new Set([
  "timestamp",
  "time",
  "date",
  "datetime",
  "ts",
]);

/** Loads `.npy` or `.csv` by extension. */
export async function loadSeries(path: string, options: LoadOptions = {}): Promise<LoadedSeries> {
  if (!path.endsWith(".npy") && !path.endsWith(".csv")) {
    throw new InputError(`${path}: unsupported input format (expected .npy or .csv)`);
  }
  if (options.timeColumn !== undefined && !path.endsWith(".csv")) {
    throw new InputError(`${path}: '--time-column' applies only to a .csv input`);
  }
  // A folder named like a file would otherwise fail mid-read, as EISDIR without its path.
  const info = await stat(path).catch((err: Error) => {
    throw new InputError(`${path}: cannot read file (${err.message})`);
  });
  if (info.isDirectory()) throw new InputError(`${path}: is a folder, not a file`);
  if (path.endsWith(".npy")) return parseNpy(await readBytes(path), path);
  return await loadCsv(path, options);
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

/**
 * The lines of a byte stream, split where readline splits them (`\n`, `\r\n`, a lone `\r`) and
 * still as bytes: a line's bytes are whole even when a character's bytes straddle two reads, so
 * each line decodes on its own and an undecodable byte is known by its line.
 */
async function* byteLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let afterCR = false;
  for await (const chunk of chunks) {
    let pos = afterCR && chunk[0] === 0x0a ? 1 : 0;
    afterCR = false;
    let lf = chunk.indexOf(0x0a, pos);
    let cr = chunk.indexOf(0x0d, pos);
    while (lf >= 0 || cr >= 0) {
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      parts.push(chunk.subarray(pos, end));
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts);
      parts = [];
      pos = end + 1;
      if (end === cr) {
        if (pos === chunk.length) afterCR = true;
        else if (chunk[pos] === 0x0a) pos++;
      }
      if (lf >= 0 && lf < pos) lf = chunk.indexOf(0x0a, pos);
      if (cr >= 0 && cr < pos) cr = chunk.indexOf(0x0d, pos);
    }
    if (pos < chunk.length) parts.push(chunk.subarray(pos));
  }
  if (parts.length > 0) yield Buffer.concat(parts);
}

/**
 * A line that is not UTF-8 (a Windows-1252 or Latin-1 export: `°` is byte 0xb0 there). Read
 * leniently it would train on names with U+FFFD in them, which no frame the engine receives has.
 */
function notUtf8(where: string, bytes: Uint8Array, header: boolean): InputError {
  const lossy = new TextDecoder("utf-8").decode(bytes);
  const before = lossy.slice(0, Math.max(0, lossy.indexOf("\uFFFD")));
  // The text before the first replacement decoded as it was written: its length in bytes is the
  // bad byte's offset.
  const bad = bytes[new TextEncoder().encode(before).length] ?? 0;
  let column = 1;
  let quoted = false;
  for (const c of before) {
    if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) column++;
  }
  const field = lossy.split(",")[column - 1]?.trim() ?? "";
  const place = header ? `header column ${column}` : `column ${column}`;
  return new InputError(
    `${where}: not UTF-8 text: byte 0x${bad.toString(16).padStart(2, "0")} in ${place} (it reads ${JSON.stringify(field)}): save the file as UTF-8 (in Excel: Save As "CSV UTF-8"), or the sensor names will not match the ones the engine receives`,
  );
}

/** The columns of a CSV header: all names, the sensors' column indices, the time column's (-1 if none). */
interface CsvHeader {
  names: string[];
  sensors: number[];
  time: number;
}

function readHeader(cells: string[], where: string, timeColumn: string | undefined): CsvHeader {
  const names = cells.map((c) => c.trim());
  const empty = names.indexOf("");
  if (empty >= 0)
    throw new InputError(`${where}: empty feature name in header column ${empty + 1}`);
  const seen = new Map<string, number>();
  for (const [j, name] of names.entries()) {
    const first = seen.get(name);
    if (first !== undefined) {
      throw new InputError(
        `${where}: duplicate feature name '${name}' in header columns ${first + 1} and ${j + 1}`,
      );
    }
    seen.set(name, j);
  }
  let time = -1;
  if (timeColumn !== undefined) {
    time = names.indexOf(timeColumn);
    if (time < 0) {
      throw new InputError(
        `${where}: '--time-column' ${JSON.stringify(timeColumn)} is not a column of the header`,
      );
    }
  } else {
    const named = names.flatMap((n, j) => (TIME_NAMES.has(n.toLowerCase()) ? [j] : []));
    if (named.length > 1) {
      const list = named.map((j) => `'${names[j]}' (column ${j + 1})`).join(", ");
      throw new InputError(
        `${where}: more than one column is named like a time column: ${list}: name the one that holds the rows' times with '--time-column NAME' (the others are then read as sensors)`,
      );
    }
    time = named.length === 1 ? named[0] : -1;
  }
  return { names, sensors: names.flatMap((_, j) => (j === time ? [] : [j])), time };
}

// Date, then optionally a time with an optional zone; a time without a zone is read as UTC, so
// that the order check does not depend on the machine's time zone.
const ISO_DATE_TIME =
  /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/** A time column's value: a number as written (epoch seconds or ms), or an ISO 8601 date-time in ms. */
function readTime(text: string, column: string, where: string): { at: number; iso: boolean } {
  const n = text === "" ? Number.NaN : Number(text);
  if (Number.isFinite(n)) return { at: n, iso: false };
  const m = ISO_DATE_TIME.exec(text);
  let at = Number.NaN;
  if (m) {
    const [, date, time, zone] = m;
    const z =
      !zone || zone.toUpperCase() === "Z"
        ? "Z"
        : zone.replace(/^([+-]\d{2}):?(\d{2})?$/, (_, h, mm) => `${h}:${mm ?? "00"}`);
    at = Date.parse(time === undefined ? date : `${date}T${time.replace(",", ".")}${z}`);
  }
  if (!Number.isFinite(at)) {
    throw new InputError(
      `${where}: time column '${column}' must hold numbers (epoch seconds or ms) or ISO 8601 date-times (2024-05-01T12:00:00Z), got '${text}'`,
    );
  }
  return { at, iso: true };
}

/** How many names a warning lists. */
const NAMES_SHOWN = 5;

async function loadCsv(path: string, options: LoadOptions): Promise<LoadedSeries> {
  const stream = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (err) =>
      reject(new InputError(`${path}: cannot read file (${err.message})`)),
    );
  });
  await opened;
  // Strict: a byte that is not UTF-8 stops the read (see notUtf8). The byte order mark is kept
  // here and dropped from the first line below.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let header: CsvHeader | undefined;
  const rows: Float32Array[] = [];
  let last: { at: number; iso: boolean; text: string; line: number } | undefined;
  // Without a time column: which sensors increased on every row so far (a clock, an index).
  let rising = new Uint8Array(0);
  let risingLeft = 0;
  let previous = new Float64Array(0);
  let lineNo = 0;
  try {
    for await (const bytes of byteLines(stream)) {
      lineNo++;
      const where = `${path}:${lineNo}`;
      let read: string;
      try {
        read = decoder.decode(bytes);
      } catch {
        throw notUtf8(where, bytes, header === undefined);
      }
      // Excel's "CSV UTF-8" starts the file with a byte order mark: not part of the first name.
      const line = lineNo === 1 && read.startsWith("\uFEFF") ? read.slice(1) : read;
      if (line.trim() === "") continue;
      // Most rows are plain numbers: only a line with a double quote takes the slower path.
      const cells = line.includes('"') ? splitQuoted(line, where) : line.split(",");
      if (!header) {
        header = readHeader(cells, where, options.timeColumn);
        if (header.time < 0) {
          rising = new Uint8Array(header.sensors.length).fill(1);
          risingLeft = rising.length;
          previous = new Float64Array(rising.length);
        }
        continue;
      }
      const { names, sensors, time } = header;
      if (cells.length !== names.length) {
        throw new InputError(
          `${where}: ragged row: ${cells.length} values, header has ${names.length} columns`,
        );
      }
      if (time >= 0) {
        const text = cells[time].trim();
        const now = { ...readTime(text, names[time], where), text, line: lineNo };
        if (last && last.iso !== now.iso) {
          throw new InputError(
            `${where}: time column '${names[time]}' mixes numbers and ISO 8601 date-times: '${text}' here, '${last.text}' on line ${last.line}`,
          );
        }
        if (last && !(now.at > last.at)) {
          throw new InputError(
            `${where}: rows must be in increasing time order (oldest first, one row per time) in column '${names[time]}': '${text}' here is ${now.at === last.at ? "the same time as" : "before"} '${last.text}' on line ${last.line} (a newest-first export must be reversed)`,
          );
        }
        last = now;
      }
      const row = new Float32Array(sensors.length);
      for (let k = 0; k < sensors.length; k++) {
        const j = sensors[k];
        const text = cells[j].trim();
        const x = text === "" ? Number.NaN : Number(text);
        if (!Number.isFinite(x)) {
          throw new InputError(`${where}: column '${names[j]}' is not a finite number: '${text}'`);
        }
        // Stored as float32: a value beyond its range would become Infinity.
        if (!Number.isFinite(Math.fround(x))) {
          throw new InputError(
            `${where}: column '${names[j]}' is outside the float32 range (about ±3.4e38): '${text}'`,
          );
        }
        row[k] = x;
        // Compared as read, not as float32: epoch seconds a second apart are equal in float32.
        if (risingLeft > 0) {
          if (rising[k] === 1 && rows.length > 0 && !(x > previous[k])) {
            rising[k] = 0;
            risingLeft--;
          }
          previous[k] = x;
        }
      }
      rows.push(row);
    }
  } catch (err) {
    // A read that fails after the file opened (a device, a file gone): still name the path.
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: cannot read file (${(err as Error).message})`);
  }
  if (!header) throw new InputError(`${path}: empty CSV (no header row)`);
  const { names, sensors, time } = header;
  const featureNames = sensors.map((j) => names[j]);
  const F = featureNames.length;
  const values = new Float32Array(rows.length * F);
  for (let t = 0; t < rows.length; t++) values.set(rows[t], t * F);
  const warnings: string[] = [];
  if (risingLeft > 0 && rows.length >= 2) {
    const up = featureNames.filter((_, k) => rising[k] === 1);
    const shown = up
      .slice(0, NAMES_SHOWN)
      .map((n) => `'${n}'`)
      .join(", ");
    const more = up.length > NAMES_SHOWN ? `, and ${up.length - NAMES_SHOWN} more` : "";
    warnings.push(
      `${path}: ${up.length === 1 ? "column" : "columns"} ${shown}${more} ${up.length === 1 ? "increases" : "increase"} on every row, like a clock or a row index: if one is, name it with '--time-column NAME' (it is then not a sensor, and the row order is checked) or leave it out of the file`,
    );
  }
  return {
    values,
    nFrames: rows.length,
    nFeatures: F,
    featureNames,
    ...(time >= 0 ? { timeColumn: names[time] } : {}),
    warnings,
  };
}
