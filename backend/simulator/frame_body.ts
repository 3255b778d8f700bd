// Builds the upstream-style frame JSON text `{"data":{"feature_0":...}}` quickly, by string building.
export interface FrameMeta {
  /** Epoch milliseconds. */
  timestamp: number;
  streamId: string;
}

/** Per-name JSON key prefixes (`"feature_0":`), computed once per name list. */
export function keyPrefixes(names: readonly string[]): string[] {
  return names.map((name, i) => `${i === 0 ? "" : ","}${JSON.stringify(name)}:`);
}

// Seven significant digits: float32 carries about that much, and the gzip body stays well under
// the engine's 512 KiB cap (full double digits would nearly double it).
function formatValue(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`frame value ${value} is not finite`);
  return String(Number(value.toPrecision(7)));
}

/**
 * The frame as JSON text. Hand-written: joining precomputed key prefixes took 12.7 ms for 25,000
 * features against 17.8 ms for building an object and `JSON.stringify` (see the README), with no
 * 25,000-key object to collect afterwards.
 *
 * @example frameBody(plant.next(), keyPrefixes(plant.featureNames), { timestamp: Date.now(), streamId: "default" })
 */
export function frameBody(
  values: Float32Array,
  prefixes: readonly string[],
  meta: FrameMeta,
): string {
  if (prefixes.length !== values.length) {
    throw new RangeError(`'prefixes' must match ${values.length} values, got ${prefixes.length}`);
  }
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) parts[i] = prefixes[i] + formatValue(values[i]);
  return `{"timestamp":${meta.timestamp},"stream_id":${JSON.stringify(meta.streamId)},"data":{${parts.join("")}}}`;
}
