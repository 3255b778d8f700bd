// Scans a JSON frame's bytes straight into a Float32Array in model order, validating as it goes.
import { type ErrorCode, HttpError } from "../../contracts/error.ts";
import {
  DEFAULT_STREAM_ID,
  FLOAT32_MAX,
  frameProblemMessage,
  parseTimestamp,
  STREAM_ID_PATTERN,
  timestampProblemMessage,
} from "../../contracts/frame.ts";
import { clipInput } from "./_clip_input.ts";
import { JsonCursor } from "./_json_cursor.ts";
import type { FeatureLayout } from "./feature_layout.ts";

/** The envelope fields of a scanned frame; the values went into the caller's array. */
export interface ScannedFrame {
  streamId: string;
  timestamp: number | undefined;
}

const SEEN = 1;
const INVALID = 2;
const KEY_LIMIT = 5;
const utf8 = new TextDecoder();
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

/**
 * Throws the 422 for one frame problem, naming the first offending keys. A key may be the
 * client's (an unknown feature or field), so each is clipped: a 4 MB key earns no 4 MB answer.
 */
export function frameProblem(code: ErrorCode, keys: readonly string[], count: number): never {
  throw new HttpError(422, code, frameProblemMessage(code, keys.map(clipInput), count));
}

/** Tracks the unknown key `for...in` over `JSON.parse`'s object lists first (what valibot reports). */
class FirstKey {
  index = Number.POSITIVE_INFINITY;
  name: string | undefined = undefined;
  add(key: string): void {
    // Integer-like keys enumerate first, ascending; the rest in insertion order.
    if (ARRAY_INDEX.test(key) && Number(key) <= 4294967294) {
      if (Number(key) < this.index) this.index = Number(key);
    } else if (this.name === undefined) this.name = key;
  }
  get first(): string | undefined {
    return this.index !== Number.POSITIVE_INFINITY ? String(this.index) : this.name;
  }
}

/**
 * The unknown feature keys in the order `for...in` over `JSON.parse`'s object lists them (what
 * `classifyFrameIssues` reports): the first {@link KEY_LIMIT} of them, and how many there are.
 * A key repeated counts once, as `JSON.parse` keeps one.
 */
class UnknownKeys {
  /** Every distinct unknown key: the count, and a repeat told apart (bounded by the body). */
  readonly #all = new Set<string>();
  /** The smallest integer-like keys, ascending (they enumerate first). */
  readonly #indices: number[] = [];
  /** The first other keys, in order met. */
  readonly #names: string[] = [];
  add(key: string): void {
    if (this.#all.has(key)) return;
    this.#all.add(key);
    if (ARRAY_INDEX.test(key) && Number(key) <= 4294967294) {
      const n = Number(key);
      const list = this.#indices;
      if (list.length === KEY_LIMIT && n > list[KEY_LIMIT - 1]) return;
      let at = list.length;
      while (at > 0 && list[at - 1] > n) at--;
      list.splice(at, 0, n);
      if (list.length > KEY_LIMIT) list.pop();
    } else if (this.#names.length < KEY_LIMIT) this.#names.push(key);
  }
  get count(): number {
    return this.#all.size;
  }
  /** The first keys, at most {@link KEY_LIMIT}. */
  get first(): string[] {
    return [...this.#indices.map(String), ...this.#names].slice(0, KEY_LIMIT);
  }
}

/**
 * The hot-path JSON decoder: one pass over the inflated bytes, no object built. Each feature value
 * is parsed and stored into its model-order slot; names, finiteness, count and duplicates are
 * checked on the way. Problems are reported with the codes, key order and messages of the valibot
 * contract (`createFrameSchema` + `classifyFrameIssues`), after the whole body proved to be JSON,
 * so invalid JSON is always 400 as with `JSON.parse`. One difference, by design: a repeated key
 * is rejected (`frame_duplicate_features`, or `frame_invalid_shape` at the top level) where
 * `JSON.parse` would keep the last value.
 *
 * Not reentrant: one scanner per thread, reused for every frame.
 */
export class JsonFrameScanner {
  readonly layout: FeatureLayout;
  #cursor = new JsonCursor();
  #state: Uint8Array;

  /** Feature indices in the order valibot checks them: `for...in` over the schema's entries. */
  #reportOrder: Int32Array;

  constructor(layout: FeatureLayout) {
    this.layout = layout;
    this.#state = new Uint8Array(layout.size);
    const entries: Record<string, number> = Object.create(null);
    for (let i = 0; i < layout.size; i++) entries[layout.names[i]] = i;
    // Integer-like names enumerate first, ascending; for `feature_N` names this is model order.
    this.#reportOrder = Int32Array.from(Object.keys(entries), (name) => entries[name]);
  }

  /** Scans `bytes` (UTF-8 JSON) into `into` (length `layout.size`). Throws HttpError 400/422. */
  scan(bytes: Uint8Array, into: Float32Array): ScannedFrame {
    const cur = this.#cursor;
    cur.reset(bytes);
    const c0 = cur.ws();
    if (c0 !== 0x7b) {
      const start = cur.p;
      cur.skipValue();
      const nonEmptyArray = c0 === 0x5b && hasElement(bytes, start + 1);
      if (cur.ws() !== -1) cur.fail();
      // valibot's object schema takes an array for an object: `data` missing, index 0 unknown.
      if (c0 === 0x5b)
        frameProblem(
          "frame_invalid_shape",
          nonEmptyArray ? ["data", "0"] : ["data"],
          nonEmptyArray ? 2 : 1,
        );
      frameProblem("frame_invalid_shape", ["(root)"], 1);
    }
    cur.p++;
    let data = 0; // 0 absent, 1 scanned object, 2 not an object
    let timestamp: number | undefined;
    // The number or text sent (undefined for any other JSON value), for the refusal's message.
    let rawTimestamp: unknown;
    let timestampOk = true;
    let streamId = DEFAULT_STREAM_ID;
    let streamIdOk = true;
    const unknown = new FirstKey();
    let repeated: string | undefined;
    const seen = new Set<string>();
    if (cur.ws() === 0x7d) cur.p++;
    else {
      for (;;) {
        if (cur.ws() !== 0x22) cur.fail();
        const key = cur.string();
        cur.expect(0x3a);
        const c = cur.ws();
        if (seen.has(key)) {
          repeated ??= key;
          cur.skipValue();
        } else if (key === "data") {
          if (c === 0x7b) {
            this.#scanData(into);
            data = 1;
          } else {
            cur.skipValue();
            data = 2;
          }
        } else if (key === "timestamp") {
          if (c === 0x2d || (c >= 0x30 && c <= 0x39)) rawTimestamp = cur.exactNumber();
          else if (c === 0x22) rawTimestamp = cur.string();
          else cur.skipValue();
          timestamp = parseTimestamp(rawTimestamp);
          timestampOk = timestamp !== undefined;
        } else if (key === "stream_id") {
          if (c === 0x22) streamId = cur.string();
          else cur.skipValue();
          streamIdOk = c === 0x22 && STREAM_ID_PATTERN.test(streamId);
        } else {
          cur.skipValue();
          unknown.add(key);
        }
        seen.add(key);
        const next = cur.ws();
        cur.p++;
        if (next === 0x7d) break;
        if (next !== 0x2c) {
          cur.p--;
          cur.fail();
        }
      }
    }
    if (cur.ws() !== -1) cur.fail();

    const shape: string[] = [];
    if (data !== 1) shape.push("data");
    if (unknown.first !== undefined) shape.push(unknown.first);
    if (repeated !== undefined) shape.push(repeated);
    if (shape.length > 0) frameProblem("frame_invalid_shape", shape, shape.length);
    this.#reportData();
    if (!timestampOk) {
      throw new HttpError(422, "frame_invalid_timestamp", timestampProblemMessage(rawTimestamp));
    }
    if (!streamIdOk) frameProblem("frame_invalid_stream_id", ["stream_id"], 1);
    return { streamId, timestamp };
  }

  #seen = 0;
  #invalid = 0;
  #unknown = new UnknownKeys();
  #duplicates: string[] = [];
  #duplicateCount = 0;

  /** Scans the `data` object at the cursor (on its `{`) into `into`. */
  #scanData(into: Float32Array): void {
    const cur = this.#cursor;
    const b = cur.b;
    const n = cur.n;
    const layout = this.layout;
    const state = this.#state;
    state.fill(0);
    this.#unknown = new UnknownKeys();
    this.#duplicates = [];
    let seen = 0;
    let invalid = 0;
    let duplicates = 0;
    let expected = 0;
    cur.p++;
    if (cur.ws() === 0x7d) cur.p++;
    else {
      for (;;) {
        if (cur.ws() !== 0x22) cur.fail();
        // Plain ASCII keys (the norm) are looked up from their bytes; others are decoded first.
        const start = cur.p + 1;
        let p = start;
        while (p < n) {
          const k = b[p];
          if (k === 0x22 || k === 0x5c || k < 0x20 || k >= 0x80) break;
          p++;
        }
        let index: number;
        let name: string | undefined;
        if (p < n && b[p] === 0x22) {
          index = layout.matchesAt(expected, b, start, p)
            ? expected
            : layout.indexOfBytes(b, start, p);
          cur.p = p + 1;
        } else {
          name = cur.string();
          index = layout.indexOf(name);
        }
        const end = p;
        if (b[cur.p] === 0x3a) cur.p++;
        else cur.expect(0x3a);
        const c = cur.ws();
        let value = Number.NaN;
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) value = cur.number();
        else cur.skipValue();
        if (index >= 0) {
          if (state[index] !== 0) {
            if (duplicates++ < KEY_LIMIT) this.#duplicates.push(layout.names[index]);
            // As JSON.parse, the last value counts: a frame refused for its values names the
            // ones it would have kept (the frame is refused for the duplicate anyway).
            const valid = value <= FLOAT32_MAX && value >= -FLOAT32_MAX;
            if (valid && state[index] === INVALID) {
              state[index] = SEEN;
              invalid--;
            } else if (!valid && state[index] === SEEN) {
              state[index] = INVALID;
              invalid++;
            }
            if (valid) into[index] = value;
          } else {
            seen++;
            // NaN (not a number) and 1e999 (Infinity) fail this comparison too.
            if (value <= FLOAT32_MAX && value >= -FLOAT32_MAX) {
              state[index] = SEEN;
              into[index] = value;
            } else {
              state[index] = INVALID;
              invalid++;
            }
          }
          expected = index + 1;
        } else this.#unknown.add(name ?? utf8.decode(b.subarray(start, end)));
        const next = cur.ws();
        cur.p++;
        if (next === 0x2c) continue;
        if (next === 0x7d) break;
        cur.p--;
        cur.fail();
      }
    }
    this.#seen = seen;
    this.#invalid = invalid;
    this.#duplicateCount = duplicates;
  }

  /** Throws the first problem of the scanned `data` in the contract's order, if any. */
  #reportData(): void {
    const size = this.layout.size;
    if (this.#invalid > 0)
      frameProblem("frame_invalid_value", this.#keysWith(INVALID), this.#invalid);
    const unknown = this.#unknown;
    if (unknown.count > 0) frameProblem("frame_unknown_features", unknown.first, unknown.count);
    if (this.#duplicateCount > 0) {
      frameProblem("frame_duplicate_features", this.#duplicates, this.#duplicateCount);
    }
    if (this.#seen < size)
      frameProblem("frame_missing_features", this.#keysWith(0), size - this.#seen);
  }

  /** The first feature names, in report order, whose state is `wanted`. */
  #keysWith(wanted: number): string[] {
    const keys: string[] = [];
    const state = this.#state;
    const order = this.#reportOrder;
    for (let k = 0; k < order.length && keys.length < KEY_LIMIT; k++) {
      if (state[order[k]] === wanted) keys.push(this.layout.names[order[k]]);
    }
    return keys;
  }
}

/** Whether the array opened just before `at` has an element (its next non-space byte is not `]`). */
function hasElement(bytes: Uint8Array, at: number): boolean {
  let p = at;
  while (bytes[p] === 0x20 || bytes[p] === 0x0a || bytes[p] === 0x0d || bytes[p] === 0x09) p++;
  return bytes[p] !== 0x5d;
}

const peekCursor = new JsonCursor();

/**
 * The top-level `stream_id` of a JSON frame, read without scanning the values: immediate when it
 * is the first key, else after skimming the keys before it. `null` when it is there but not a
 * string; `undefined` when it is absent or the body is not a JSON object (the scanner then
 * reports the problem). The text is not checked: it may be any length.
 */
export function peekStreamId(bytes: Uint8Array): string | null | undefined {
  const cur = peekCursor;
  try {
    cur.reset(bytes);
    if (cur.ws() !== 0x7b) return undefined;
    cur.p++;
    for (;;) {
      if (cur.ws() !== 0x22) return undefined;
      const key = cur.string();
      cur.expect(0x3a);
      const c = cur.ws();
      if (key === "stream_id") return c === 0x22 ? cur.string() : null;
      cur.skipValue();
      const next = cur.ws();
      cur.p++;
      if (next !== 0x2c) return undefined;
    }
  } catch {
    return undefined;
  }
}
