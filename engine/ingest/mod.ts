// Public API of frame ingest: request body → validated float32 values in model order.
export { createFeatureLayout, type FeatureLayout } from "./feature_layout.ts";
export {
  createIngestor,
  createThreadIngestor,
  type IngestedFrame,
  type IngestLimits,
  type Ingestor,
  type IngestorOptions,
} from "./ingestor.ts";
export { JsonFrameScanner, type ScannedFrame } from "./json_frame_scanner.ts";
