// The incident context an alert carries: history before onset, related sensors, fault kind.
export {
  type HistoryReport,
  type HistoryShortfall,
  type HistorySpan,
  HistoryStore,
  type HistoryStoreOptions,
  historyReport,
} from "./history_store.ts";
export {
  type AlertEvidence,
  IncidentEvidence,
  type IncidentEvidenceOptions,
  levelSeries,
} from "./incident_evidence.ts";
export { crossSubspaceFromOnnx } from "./model_subspace.ts";
