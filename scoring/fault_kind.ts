// Reads an incident's evidence as an instrument failing (`sensor`) or the process moving (`process`); pure.
import type { FaultKind } from "../contracts/alert.ts";

/** What the classifier looks at for one listed sensor, most severe first. */
export interface FaultEvidence {
  /** The sensor's readings from the incident's onset to the alert's frame (at least its window). */
  readings: ArrayLike<number>;
  /** Its typical range in its own units (1st..99th percentile in training), when the model has it. */
  typical?: { low: number; high: number };
  /** Its related sensors' own deviations in this window (standard deviations), with their weights. */
  related?: readonly { weight: number; moved: number }[];
}

/** Readings in a row that must be equal before a sensor counts as stuck (a flat line). */
export const FLAT_READINGS = 5;
/**
 * Typical ranges (1st..99th percentile, about 4.7 standard deviations for a normal sensor) beyond
 * that range a reading must lie to count as far outside training: about 7 from the centre.
 */
export const FAR_RANGES = 1;
/**
 * Times its typical magnitude (at least 1 in its units) a reading must reach to be an instrument's
 * overload value, whatever its related sensors do: 9.9e37, the float32 limit. No process moves a
 * variable by 18 orders of magnitude (a vacuum gauge spans about 13), and from about there the
 * graph cannot score it (engine/README.md, "Incidents and alerts"), while a partner's chance
 * excursion (a few standard deviations, in one window of about eleven on a running plant) would
 * otherwise read as an echo.
 */
export const OVERLOAD_FACTOR = 1e18;
/** A related sensor that moved at least this far (standard deviations) echoes the sensor. */
export const ECHO_MOVED = 3;
/** Most severe sensors the verdict looks at: the tail of a long list says little of the cause. */
export const KIND_SENSORS = 5;

/**
 * The readings a sensor's kind is judged on: from the incident's onset to the alert's frame, and
 * at least the scored window. An incident opens a couple of windows after its onset, fewer
 * readings than a flat line needs ({@link FLAT_READINGS}), so from the onset alone a stuck sensor
 * would read as the process moving.
 *
 * @example kindReadings([1, 2, 4, 4, 4, 4, 4], 5, 5); // [4, 4, 4, 4, 4]
 */
export function kindReadings<T>(values: readonly T[], onset: number, windowSize: number): T[] {
  return values.slice(Math.max(0, Math.min(onset, values.length - windowSize)));
}

/** Why a sensor looks like a failing instrument, or `undefined` when it does not. */
export function instrumentSign(
  e: FaultEvidence,
): "non_finite" | "overload" | "flat" | "far" | undefined {
  const r = e.readings;
  const n = r.length;
  for (let i = 0; i < n; i++) if (!Number.isFinite(r[i])) return "non_finite";
  const t = e.typical;
  const bounded = t && Number.isFinite(t.low) && Number.isFinite(t.high);
  const overload =
    OVERLOAD_FACTOR * Math.max(1, bounded ? Math.abs(t.low) : 0, bounded ? Math.abs(t.high) : 0);
  for (let i = 0; i < n; i++) if (Math.abs(r[i]) >= overload) return "overload";
  if (n >= FLAT_READINGS) {
    // The last FLAT_READINGS equal to the float32 precision the readings arrive in.
    const last = r[n - 1];
    const tol = Math.abs(last) * 2 ** -22;
    let flat = true;
    for (let i = n - FLAT_READINGS; i < n - 1 && flat; i++) flat = Math.abs(r[i] - last) <= tol;
    if (flat) return "flat";
  }
  if (t && Number.isFinite(t.low) && Number.isFinite(t.high) && t.high >= t.low) {
    const margin = FAR_RANGES * Math.max(t.high - t.low, Number.MIN_VALUE);
    let far = false;
    for (let i = 0; i < n && !far; i++) far = r[i] > t.high + margin || r[i] < t.low - margin;
    const echoed = e.related?.some((p) => Math.abs(p.moved) >= ECHO_MOVED) ?? false;
    if (far && !echoed) return "far";
  }
  return undefined;
}

/**
 * The incident's kind from its listed sensors (most severe first): `sensor` when each of the
 * `KIND_SENSORS` most severe looks like a failing instrument (non-finite readings, an overload
 * value, a flat line, or a reading far outside its training range that none of its related sensors
 * echoes), else
 * `process`. One sensor stuck or spiking alone reads `sensor`; a shift, a drift or a noise burst
 * that related sensors share reads `process`. An incident with no listed sensor is `process`.
 *
 * @example faultKind([{ readings: [4, 4, 4, 4, 4] }]); // "sensor"
 */
export function faultKind(sensors: readonly FaultEvidence[]): FaultKind {
  const n = Math.min(sensors.length, KIND_SENSORS);
  if (n === 0) return "process";
  for (let i = 0; i < n; i++) if (!instrumentSign(sensors[i])) return "process";
  return "sensor";
}
