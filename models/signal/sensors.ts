// Per-sensor behaviour of the simulated plant: level, scale, autocorrelation, cycles, tails, quantisation.
import { mixSeed, Rng } from "./prng.ts";

/** Noise family of a sensor. */
export type SensorFamily = "gaussian" | "heavy_tailed" | "quantised";
export const SENSOR_FAMILIES: readonly SensorFamily[] = ["gaussian", "heavy_tailed", "quantised"];

/**
 * Struct-of-arrays description of every sensor. Sensor `f` depends only on `(seed, f)`, so the
 * first 1,000 sensors of a 25,000-sensor plant are the sensors of a 1,000-sensor plant.
 */
export interface SensorTable {
  readonly n: number;
  /** 0 gaussian, 1 heavy_tailed, 2 quantised (index into SENSOR_FAMILIES). */
  readonly family: Uint8Array;
  readonly level: Float64Array;
  /** Marginal standard deviation of the normal signal (AR part + cycle), the unit of anomaly magnitudes. */
  readonly std: Float64Array;
  /** AR(1) coefficient of the fast component. */
  readonly phi: Float64Array;
  /** Innovation standard deviation of the AR(1) component. */
  readonly innovStd: Float64Array;
  /** Amplitude, angular frequency (rad/frame) and phase of the slow cycle. */
  readonly cycleAmp: Float64Array;
  readonly cycleOmega: Float64Array;
  readonly cyclePhase: Float64Array;
  /** Student-t degrees of freedom of heavy-tailed sensors (0 otherwise). */
  readonly tailDf: Uint8Array;
  /** Quantisation step (0 = continuous). */
  readonly quantum: Float64Array;
}

/** Builds the sensor table of a plant. */
export function createSensorTable(n: number, seed: number): SensorTable {
  const t: SensorTable = {
    n,
    family: new Uint8Array(n),
    level: new Float64Array(n),
    std: new Float64Array(n),
    phi: new Float64Array(n),
    innovStd: new Float64Array(n),
    cycleAmp: new Float64Array(n),
    cycleOmega: new Float64Array(n),
    cyclePhase: new Float64Array(n),
    tailDf: new Uint8Array(n),
    quantum: new Float64Array(n),
  };
  for (let f = 0; f < n; f++) {
    const rng = new Rng(mixSeed(seed, f));
    // Levels span five orders of magnitude; a tenth of the sensors oscillate around zero (vibration).
    const centred = rng.uniform() < 0.1;
    const magnitude = 10 ** rng.range(-1, 4);
    const sign = rng.uniform() < 0.1 ? -1 : 1;
    const level = centred ? 0 : sign * magnitude;
    // Relative noise between 0.3% and 30% of the level (absolute for centred sensors).
    const std = centred ? 10 ** rng.range(-2, 1) : magnitude * 10 ** rng.range(-2.5, -0.5);
    const phi = rng.uniform() < 0.3 ? rng.range(0, 0.5) : rng.range(0.5, 0.97);
    const cycleShare = rng.uniform() < 0.4 ? 0 : rng.range(0.05, 0.6);
    const period = rng.range(150, 1500);
    const u = rng.uniform();
    const family = u < 0.8 ? 0 : u < 0.9 ? 1 : 2;
    const arStd = std * Math.sqrt(1 - cycleShare);
    t.family[f] = family;
    t.level[f] = level;
    t.std[f] = std;
    t.phi[f] = phi;
    t.innovStd[f] = arStd * Math.sqrt(1 - phi * phi);
    t.cycleAmp[f] = std * Math.sqrt(2 * cycleShare);
    t.cycleOmega[f] = (2 * Math.PI) / period;
    t.cyclePhase[f] = rng.range(0, 2 * Math.PI);
    t.tailDf[f] = family === 1 ? 3 + rng.int(3) : 0;
    t.quantum[f] = family === 2 ? std * rng.range(0.25, 1) : 0;
  }
  return t;
}
