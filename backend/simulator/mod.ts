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
export { createFrameSender, delay, type EngineAnswer, type FrameSender } from "./send_frame.ts";
export {
  createSimulator,
  type PlannedAnomaly,
  type Simulator,
  type SimulatorStatus,
  type StreamPlan,
} from "./simulator.ts";
