// A fixed-capacity FIFO of slot ids: the order in which committed frames are scored.

/**
 * Ring buffer of unsigned 32-bit integers with power-of-two capacity, so wrapping is a mask
 * instead of a modulo and the storage is one preallocated `Uint32Array`.
 *
 * Complexity: `push`, `shift`, `peek` and `length` are O(1); nothing allocates after construction.
 *
 * @example
 * const ring = new RingBuffer(100); // capacity rounds up to 128
 * ring.push(7);
 * ring.shift(); // 7
 */
export class RingBuffer {
  readonly #items: Uint32Array;
  readonly #mask: number;
  #head = 0; // index of the oldest item
  #length = 0;

  constructor(minCapacity: number) {
    if (!Number.isInteger(minCapacity) || minCapacity < 1 || minCapacity > 2 ** 30) {
      throw new RangeError(`'minCapacity' must be an integer 1..2^30, got ${minCapacity}`);
    }
    let capacity = 1;
    while (capacity < minCapacity) capacity *= 2;
    this.#items = new Uint32Array(capacity);
    this.#mask = capacity - 1;
  }

  get capacity(): number {
    return this.#items.length;
  }

  get length(): number {
    return this.#length;
  }

  /** Appends `value`; returns false (and changes nothing) when full. */
  push(value: number): boolean {
    if (this.#length === this.#items.length) return false;
    this.#items[(this.#head + this.#length) & this.#mask] = value;
    this.#length++;
    return true;
  }

  /** Removes and returns the oldest value, or -1 when empty. */
  shift(): number {
    if (this.#length === 0) return -1;
    const value = this.#items[this.#head];
    this.#head = (this.#head + 1) & this.#mask;
    this.#length--;
    return value;
  }

  /** The oldest value without removing it, or -1 when empty. */
  peek(): number {
    return this.#length === 0 ? -1 : this.#items[this.#head];
  }
}
