// A moved operating point of the simulated plant: some sensors settle at another level, a few relations change, and it stays so.
import type { SensorTable } from "./sensors.ts";

/** Which sensors a move touches, and how. */
export interface OperatingPointMove {
  /** Sensors whose level moves by `shiftStd` of their normal std. */
  shifted: number[];
  /** Level change of the shifted sensors, in their std (signed). */
  shiftStd: number;
  /** Sensors mirrored around their level: same range, their relation to the rest flipped. */
  mirrored: number[];
  /** One sensor that picks up 3 times another's deviation (in its own std). */
  coupled?: { f: number; from: number };
}

/**
 * The move the drift scenario and the simulator apply: a fifth of the sensors (at least one)
 * shift by 4 std, the next two are mirrored and the two after are coupled. `skip` lists sensors
 * the move leaves alone (the plant's drive, whose reading says whether the machine runs).
 *
 * @example const move = defaultMove(40, [plantDriveSensor(plant)]);
 */
export function defaultMove(nFeatures: number, skip: readonly number[] = []): OperatingPointMove {
  const free = Array.from({ length: nFeatures }, (_, f) => f).filter((f) => !skip.includes(f));
  const n = Math.max(1, Math.round(nFeatures / 5));
  const shifted = free.slice(0, n);
  const mirrored = free.slice(n, n + 2);
  const [f, from] = free.slice(n + 2, n + 4);
  return {
    shifted,
    shiftStd: 4,
    mirrored,
    ...(from !== undefined ? { coupled: { f, from } } : {}),
  };
}

/**
 * Applies `move` to one frame in place: readings of a plant whose operating point moved.
 *
 * @example for (;;) { const x = plant.next(); applyMove(x, move, plant.sensors); }
 */
export function applyMove(
  x: Float32Array,
  move: OperatingPointMove,
  sensors: Pick<SensorTable, "level" | "std">,
): Float32Array {
  const { level, std } = sensors;
  for (const f of move.shifted) x[f] += move.shiftStd * std[f];
  for (const f of move.mirrored) x[f] = 2 * level[f] - x[f];
  const c = move.coupled;
  if (c) x[c.f] += 3 * (std[c.f] / std[c.from]) * (x[c.from] - level[c.from]);
  return x;
}
