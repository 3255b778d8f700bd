// The model's feature names in order, with a byte-level lookup so the scanner never builds key strings.

/**
 * Feature names in model order plus the lookups the hot path needs. Built once per model.
 * `indexOfBytes` finds a name from the raw UTF-8 bytes of a JSON key without allocating.
 */
export interface FeatureLayout {
  readonly names: readonly string[];
  readonly size: number;
  /** Index of `name` in model order, or -1. */
  indexOf(name: string): number;
  /** Index of the feature whose UTF-8 name is `bytes[start, end)`, or -1. Allocation-free. */
  indexOfBytes(bytes: Uint8Array, start: number, end: number): number;
  /** Whether feature `index` is named exactly `bytes[start, end)` (checks the expected index first). */
  matchesAt(index: number, bytes: Uint8Array, start: number, end: number): boolean;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
  return h | 0;
}

/**
 * Builds the layout of a model's features. Names must be non-empty and distinct.
 *
 * Lookup is an open-addressing hash table over the UTF-8 bytes of the names (FNV-1a, load factor
 * at most 1/4), so a key costs one pass over its bytes and usually one comparison.
 *
 * @example
 * const layout = createFeatureLayout(["feature_0", "feature_1"]);
 * layout.indexOf("feature_1"); // 1
 */
export function createFeatureLayout(names: readonly string[]): FeatureLayout {
  if (!Array.isArray(names) || names.length === 0) {
    throw new RangeError(`'names' must be a non-empty array of feature names, got ${names}`);
  }
  const byName = new Map<string, number>();
  const encoder = new TextEncoder();
  const encoded: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (typeof name !== "string" || name.length === 0) {
      throw new RangeError(
        `'names' must hold non-empty strings, got ${JSON.stringify(name)} at ${i}`,
      );
    }
    if (byName.has(name))
      throw new RangeError(`'names' must be distinct, ${JSON.stringify(name)} repeats`);
    byName.set(name, i);
    const bytes = encoder.encode(name);
    encoded.push(bytes);
    total += bytes.length;
  }
  const pool = new Uint8Array(total);
  const offsets = new Int32Array(names.length + 1);
  const hashes = new Int32Array(names.length);
  for (let i = 0, at = 0; i < encoded.length; i++) {
    pool.set(encoded[i], at);
    offsets[i] = at;
    at += encoded[i].length;
    offsets[i + 1] = at;
    hashes[i] = fnv1a(encoded[i], 0, encoded[i].length);
  }
  let capacity = 16;
  while (capacity < names.length * 4) capacity *= 2;
  const mask = capacity - 1;
  const slots = new Int32Array(capacity).fill(-1);
  for (let i = 0; i < names.length; i++) {
    let slot = hashes[i] & mask;
    while (slots[slot] !== -1) slot = (slot + 1) & mask;
    slots[slot] = i;
  }

  function matchesAt(index: number, bytes: Uint8Array, start: number, end: number): boolean {
    if (index < 0 || index >= names.length) return false;
    const from = offsets[index];
    if (offsets[index + 1] - from !== end - start) return false;
    for (let k = 0; k < end - start; k++) if (pool[from + k] !== bytes[start + k]) return false;
    return true;
  }

  return {
    names: Object.freeze([...names]),
    size: names.length,
    indexOf: (name) => byName.get(name) ?? -1,
    matchesAt,
    indexOfBytes(bytes, start, end) {
      const h = fnv1a(bytes, start, end);
      for (let slot = h & mask; ; slot = (slot + 1) & mask) {
        const index = slots[slot];
        if (index === -1) return -1;
        if (hashes[index] === h && matchesAt(index, bytes, start, end)) return index;
      }
    },
  };
}
