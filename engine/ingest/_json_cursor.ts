// A JSON lexer over UTF-8 bytes: whitespace, numbers, strings and skipping whole values, no allocation.
import { HttpError } from "../../contracts/error.ts";

const utf8 = new TextDecoder();

/** Powers of ten exactly representable as doubles (Clinger's fast path). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** Relative error bound of the approximate path with margin (true error is below 2^-50). */
const SLACK = 2 ** -48;
/** Past this the approximate path hands over to `Number`, so range checks see the exact double. */
const APPROX_LIMIT = 1e38;

const OBJECT = 1;
const ARRAY = 2;

/** The one syntax error: JSON.parse would throw on this body. */
export function invalidJson(at: number): HttpError {
  return new HttpError(400, "invalid_json", `body is not valid JSON (at byte ${at})`);
}

/** A cursor over UTF-8 JSON bytes. `p` is the position; methods advance it or throw 400 invalid_json. */
export class JsonCursor {
  b: Uint8Array = new Uint8Array(0);
  p = 0;
  n = 0;
  #stack = new Uint8Array(64);

  reset(bytes: Uint8Array): void {
    this.b = bytes;
    this.n = bytes.length;
    // TextDecoder drops a leading BOM before JSON.parse sees the text; so do we.
    this.p = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  }

  fail(): never {
    throw invalidJson(this.p);
  }

  /** Skips JSON whitespace; returns the next byte (or -1 at the end). */
  ws(): number {
    const b = this.b;
    let p = this.p;
    while (p < this.n) {
      const c = b[p];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        this.p = p;
        return c;
      }
      p++;
    }
    this.p = p;
    return -1;
  }

  /** Consumes byte `c` after optional whitespace, or fails. */
  expect(c: number): void {
    if (this.ws() !== c) this.fail();
    this.p++;
  }

  /**
   * Parses the number at `p`. The result rounds to the same float32 as the exact decimal's nearest
   * double does (what `Math.fround(JSON.parse(text))` gives): short mantissas are exact (Clinger),
   * long ones are exact to 2^-50 and accepted only when no float32 rounding boundary lies that
   * close; anything else goes through `Number` on the text.
   */
  number(): number {
    const b = this.b;
    const start = this.p;
    let p = start;
    const neg = b[p] === 0x2d;
    if (neg) p++;
    let m = 0;
    let digits = 0;
    let exp = 0;
    let c = b[p];
    if (c === 0x30) c = b[++p];
    else if (c >= 0x31 && c <= 0x39) {
      do {
        if (digits < 19) {
          m = m * 10 + (c - 0x30);
          digits++;
        } else exp++;
        c = b[++p];
      } while (c >= 0x30 && c <= 0x39);
    } else {
      this.p = p;
      this.fail();
    }
    if (c === 0x2e) {
      c = b[++p];
      if (!(c >= 0x30 && c <= 0x39)) {
        this.p = p;
        this.fail();
      }
      do {
        if (m === 0 && c === 0x30) exp--;
        else if (digits < 19) {
          m = m * 10 + (c - 0x30);
          digits++;
          exp--;
        }
        c = b[++p];
      } while (c >= 0x30 && c <= 0x39);
    }
    if (c === 0x65 || c === 0x45) {
      c = b[++p];
      const negExp = c === 0x2d;
      if (negExp || c === 0x2b) c = b[++p];
      if (!(c >= 0x30 && c <= 0x39)) {
        this.p = p;
        this.fail();
      }
      let e = 0;
      do {
        if (e < 100_000) e = e * 10 + (c - 0x30);
        c = b[++p];
      } while (c >= 0x30 && c <= 0x39);
      exp += negExp ? -e : e;
    }
    this.p = p;
    if (m === 0) return neg ? -0 : 0;
    if (exp >= -22 && exp <= 22) {
      const x = exp >= 0 ? m * POW10[exp] : m / POW10[-exp];
      if (digits <= 15) return neg ? -x : x;
      if (x < APPROX_LIMIT && Math.fround(x * (1 - SLACK)) === Math.fround(x * (1 + SLACK))) {
        return neg ? -x : x;
      }
    }
    return Number(utf8.decode(b.subarray(start, p)));
  }

  /** Like {@link number} but the exact double JSON.parse gives (for timestamps). */
  exactNumber(): number {
    const start = this.p;
    this.number();
    return Number(utf8.decode(this.b.subarray(start, this.p)));
  }

  /** Skips the string at `p` (which must be `"`); validates escapes and control characters. */
  skipString(): void {
    const b = this.b;
    const n = this.n;
    let p = this.p + 1;
    for (;;) {
      if (p >= n) break;
      const c = b[p];
      if (c === 0x22) {
        this.p = p + 1;
        return;
      }
      if (c === 0x5c) {
        const e = b[p + 1];
        if (e === 0x75) {
          if (!(isHex(b[p + 2]) && isHex(b[p + 3]) && isHex(b[p + 4]) && isHex(b[p + 5]))) break;
          p += 6;
        } else if (
          e === 0x22 ||
          e === 0x5c ||
          e === 0x2f ||
          e === 0x62 ||
          e === 0x66 ||
          e === 0x6e ||
          e === 0x72 ||
          e === 0x74
        ) {
          p += 2;
        } else break;
      } else if (c < 0x20) break;
      else p++;
    }
    this.p = p;
    this.fail();
  }

  /** Skips and decodes the string at `p` exactly as `JSON.parse` would. */
  string(): string {
    const start = this.p;
    this.skipString();
    return JSON.parse(utf8.decode(this.b.subarray(start, this.p))) as string;
  }

  /** Skips one whole JSON value of any depth (iteratively, so deep nesting cannot overflow). */
  skipValue(): void {
    let depth = 0;
    for (;;) {
      let c = this.ws();
      if (c === 0x7b || c === 0x5b) {
        this.p++;
        const close = c === 0x7b ? 0x7d : 0x5d;
        if (this.ws() === close) this.p++;
        else {
          if (depth === this.#stack.length) {
            const grown = new Uint8Array(depth * 2);
            grown.set(this.#stack);
            this.#stack = grown;
          }
          this.#stack[depth++] = c === 0x7b ? OBJECT : ARRAY;
          if (c === 0x7b) this.#key();
          continue;
        }
      } else if (c === 0x22) this.skipString();
      else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) this.number();
      else if (c === 0x74) this.#literal(TRUE);
      else if (c === 0x66) this.#literal(FALSE);
      else if (c === 0x6e) this.#literal(NULL);
      else this.fail();
      // After a value: close containers or move to the next element.
      for (;;) {
        if (depth === 0) return;
        c = this.ws();
        const top = this.#stack[depth - 1];
        if (c === 0x2c) {
          this.p++;
          if (top === OBJECT) this.#key();
          break;
        }
        if ((c === 0x7d && top === OBJECT) || (c === 0x5d && top === ARRAY)) {
          this.p++;
          depth--;
        } else this.fail();
      }
    }
  }

  #key(): void {
    if (this.ws() !== 0x22) this.fail();
    this.skipString();
    this.expect(0x3a);
  }

  #literal(text: Uint8Array): void {
    for (let k = 0; k < text.length; k++) {
      if (this.b[this.p + k] !== text[k]) {
        this.p += k;
        this.fail();
      }
    }
    this.p += text.length;
  }
}

const TRUE = new TextEncoder().encode("true");
const FALSE = new TextEncoder().encode("false");
const NULL = new TextEncoder().encode("null");

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}
