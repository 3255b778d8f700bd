// Training history: what the engine records of each model's streams for retraining, and how it is read back.
export { BatchFrames } from "./batch_frames.ts";
export {
  type ChunkHeader,
  decodeChunk,
  encodeFrame,
  encodeHeader,
  type HistoryFrame,
} from "./chunk_format.ts";
export {
  type HistoryRecorders,
  historyDirOf,
  historyRecordersFor,
  type RecordedLane,
  writerFolder,
} from "./from_config.ts";
export { type HistoryIndex, type IndexedIncident, readIndex } from "./history_index.ts";
export { type FrameUse, frameUse, type HistoryRead, readHistory } from "./history_reader.ts";
export {
  featuresSha256,
  HistoryRecorder,
  type HistoryRecorderOptions,
  type RecordedModel,
  runOf,
} from "./history_recorder.ts";
export {
  IncidentMembership,
  type WindowIncidents,
  windowIncidents,
} from "./window_incidents.ts";
