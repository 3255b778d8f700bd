// Training history: what the engine records of each model's streams for retraining, and how it is read back.
export {
  type ChunkHeader,
  decodeChunk,
  encodeFrame,
  encodeHeader,
  type HistoryFrame,
} from "./chunk_format.ts";
export { historyDirOf, historyRecordersFor, type HistoryRecorders } from "./from_config.ts";
export { type HistoryIndex, type IndexedIncident, readIndex } from "./history_index.ts";
export { frameUse, type FrameUse, type HistoryRead, readHistory } from "./history_reader.ts";
export { featuresSha256, HistoryRecorder, type HistoryRecorderOptions } from "./history_recorder.ts";
