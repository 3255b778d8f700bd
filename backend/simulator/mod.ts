// The plant simulator's public parts.
export { frameBody, keyPrefixes } from "./frame_body.ts";
export { gzipText } from "./gzip.ts";
export {
  createPlantStreams,
  type InjectedAnomaly,
  type PlantStreams,
  streamIds,
} from "./plant_streams.ts";
export { simulatorRoutes } from "./routes.ts";
export {
  createFrameSender,
  delay,
  type EngineAnswer,
  type FailedAttempt,
  type FrameSender,
} from "./send_frame.ts";
export { createSimulator, type Simulator, type SimulatorStatus } from "./simulator.ts";
export {
  checkPlan,
  MAX_ANOMALY_MAGNITUDE,
  MAX_STREAM_SENSORS,
  type PlannedAnomaly,
  type PlannedMove,
  type PlannedStop,
  type StreamPlan,
} from "./stream_plan.ts";
