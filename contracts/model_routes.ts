// MODEL_ROUTES: which model scores which stream, by glob on stream_id, first match wins.
import { STREAM_ID_PATTERN } from "./frame.ts";
import { MODEL_NAME_PATTERN } from "./models_api.ts";

/** One `glob=model` entry of `MODEL_ROUTES`. */
export interface ModelRoute {
  glob: string;
  model: string;
}

/** Characters a stream id may hold, plus the glob's `*` and `?`. */
const GLOB_PATTERN = /^[A-Za-z0-9._:*?-]{1,128}$/;

const QUESTION = 0x3f;

/** Whether `text` holds `segment` at `at`, a `?` in it standing for any one character. */
function holdsAt(text: string, at: number, segment: string): boolean {
  for (let j = 0; j < segment.length; j++) {
    const c = segment.charCodeAt(j);
    if (c !== QUESTION && c !== text.charCodeAt(at + j)) return false;
  }
  return true;
}

/** The first index in `from..to - segment.length` where `text` holds `segment`, else -1. */
function findIn(text: string, segment: string, from: number, to: number): number {
  const last = to - segment.length;
  if (!segment.includes("?")) {
    const at = text.indexOf(segment, from);
    return at >= 0 && at <= last ? at : -1;
  }
  for (let at = from; at <= last; at++) if (holdsAt(text, at, segment)) return at;
  return -1;
}

/**
 * A glob's matcher, true when the glob matches the whole of `text`: `*` any run of characters,
 * `?` one; the rest literal (`.` is a dot). Linear in the text (times the glob's length): the
 * first and last pieces between stars are anchored, each piece between them is placed at its
 * first fit after the previous one. First fit is enough, as a star can take whatever an earlier
 * placement leaves, so nothing is ever retried; a regular expression with several `.*` backtracks
 * quadratically over a long text with no match.
 *
 * @example
 * globMatcher("line-*-temp-*")("line-7-temp-2"); // true
 */
export function globMatcher(glob: string): (text: string) => boolean {
  const pieces = glob.split("*");
  const head = pieces[0];
  if (pieces.length === 1) {
    return function matchesExactly(text) {
      return text.length === head.length && holdsAt(text, 0, head);
    };
  }
  const tail = pieces[pieces.length - 1];
  const middle = pieces.slice(1, -1).filter((piece) => piece !== "");
  const least = middle.reduce((sum, piece) => sum + piece.length, head.length + tail.length);
  return function matchesGlob(text) {
    if (text.length < least) return false;
    const end = text.length - tail.length;
    if (!holdsAt(text, 0, head) || !holdsAt(text, end, tail)) return false;
    let at = head.length;
    for (const piece of middle) {
      const found = findIn(text, piece, at, end);
      if (found < 0) return false;
      at = found + piece.length;
    }
    return true;
  };
}

/** Whether every stream id `inner` matches is also matched by `outer` (the cases we can tell). */
function covers(outer: string, inner: string): boolean {
  if (outer === inner || /^\*+$/.test(outer)) return true;
  // `line-*` covers `line-b-*` and `line-7`: a literal prefix followed by a lone trailing `*`.
  const star = outer.indexOf("*");
  if (star === outer.length - 1 && !outer.includes("?")) {
    const prefix = outer.slice(0, -1);
    return inner.startsWith(prefix) && !/[*?]/.test(prefix);
  }
  return false;
}

/**
 * Parses `MODEL_ROUTES` (`"boiler-*=boiler,line-b-*=packaging"`; empty = no routes). Throws a
 * `RangeError` quoting the variable and the entry for a malformed entry, a model name that cannot
 * be one, a glob that can match no stream id (a character a stream id cannot hold), and a glob
 * that can never be reached because an earlier one matches everything it does.
 *
 * @example
 * parseModelRoutes("boiler-*=boiler"); // [{ glob: "boiler-*", model: "boiler" }]
 */
export function parseModelRoutes(text: string): ModelRoute[] {
  const routes: ModelRoute[] = [];
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const eq = entry.lastIndexOf("=");
    const glob = eq < 0 ? "" : entry.slice(0, eq).trim();
    const model = eq < 0 ? "" : entry.slice(eq + 1).trim();
    if (eq < 0 || glob === "" || model === "") {
      throw new RangeError(`'MODEL_ROUTES' entry ${JSON.stringify(entry)} must be GLOB=MODEL`);
    }
    if (!MODEL_NAME_PATTERN.test(model)) {
      throw new RangeError(
        `'MODEL_ROUTES' entry ${JSON.stringify(entry)}: ${JSON.stringify(model)} is not a model name ([A-Za-z0-9._-])`,
      );
    }
    if (!GLOB_PATTERN.test(glob)) {
      throw new RangeError(
        `'MODEL_ROUTES' entry ${JSON.stringify(entry)}: the glob ${JSON.stringify(glob)} matches no stream id (stream ids hold ${STREAM_ID_PATTERN.source}; globs add * and ?)`,
      );
    }
    const shadow = routes.find((r) => covers(r.glob, glob));
    if (shadow) {
      throw new RangeError(
        `'MODEL_ROUTES' entry ${JSON.stringify(entry)} is never reached: the earlier glob ${JSON.stringify(shadow.glob)} matches every stream it does`,
      );
    }
    routes.push({ glob, model });
  }
  return routes;
}

/**
 * Picks a stream's model: the first route whose glob matches `streamId`, else `fallback`
 * (`DEFAULT_MODEL_NAME`). Built once; `route` is called per frame.
 */
export class StreamRoutes {
  readonly routes: readonly ModelRoute[];
  readonly fallback: string;
  readonly #matchers: ((streamId: string) => boolean)[];

  constructor(routes: readonly ModelRoute[], fallback: string) {
    this.routes = routes;
    this.fallback = fallback;
    this.#matchers = routes.map((r) => globMatcher(r.glob));
  }

  /** The model names in use: the fallback first, then each routed model once. */
  get models(): string[] {
    return [...new Set([this.fallback, ...this.routes.map((r) => r.model)])];
  }

  /**
   * The model that scores `streamId`. A text that is no stream id (the frame is refused for it)
   * matches no glob, so its length never reaches the matchers.
   */
  route(streamId: string): string {
    if (!STREAM_ID_PATTERN.test(streamId)) return this.fallback;
    for (let i = 0; i < this.#matchers.length; i++) {
      if (this.#matchers[i](streamId)) return this.routes[i].model;
    }
    return this.fallback;
  }

  /** The globs that reach `model` (`*` for the fallback's unmatched streams). */
  globsOf(model: string): string[] {
    const globs = this.routes.filter((r) => r.model === model).map((r) => r.glob);
    return model === this.fallback ? [...globs, "*"] : globs;
  }
}
