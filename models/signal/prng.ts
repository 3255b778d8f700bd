// A tiny seeded PRNG (xoshiro128**) with normal deviates, so every generated number is reproducible.

/** Mixes a 32-bit integer into a well-spread 32-bit hash (splitmix-style finaliser). */
export function hash32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Combines a seed with a stream/sub-seed into a new 32-bit seed. */
export function mixSeed(seed: number, stream: number): number {
  return hash32((hash32(seed) ^ Math.imul(stream + 0x9e3779b9, 0x27d4eb2d)) >>> 0);
}

/**
 * xoshiro128** generator. `uniform()` is in [0, 1), `normal()` is a standard normal deviate
 * (Box–Muller, second value cached).
 *
 * @example const rng = new Rng(42); rng.normal();
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare = 0;
  #hasSpare = false;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`'seed' must be a finite number, got ${seed}`);
    const s = Math.trunc(seed) >>> 0;
    this.#a = hash32(s ^ 0x243f6a88) | 1;
    this.#b = hash32(s + 0x85a308d3);
    this.#c = hash32(s ^ 0x13198a2e);
    this.#d = hash32(s + 0x03707344);
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const b = this.#b;
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    this.#c ^= this.#a;
    this.#d ^= b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal deviate. */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(th);
    this.#hasSpare = true;
    return r * Math.cos(th);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
