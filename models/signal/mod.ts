// Public API of the plant signal generator, shared by models/ (training, eval) and backend/ (simulator).
export {
  ANOMALY_DEFAULTS,
  ANOMALY_KINDS,
  type AnomalyKind,
  type AnomalySpec,
  type RandomAnomalyOptions,
  randomAnomaly,
} from "./anomaly.ts";
export { applyMove, defaultMove, type OperatingPointMove } from "./operating_point.ts";
export {
  createPlant,
  DEFAULT_N_FEATURES,
  DEFAULT_PLANT_SEED,
  type Plant,
  type PlantOptions,
} from "./plant.ts";
export { plantDriveSensor, plantRunningCondition, stoppedFrame } from "./plant_running.ts";
export { hash32, mixSeed, Rng } from "./prng.ts";
export { SENSOR_FAMILIES, type SensorFamily, type SensorTable } from "./sensors.ts";
