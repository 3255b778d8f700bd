// The engine's client of operators' decisions in the backend: silences and incident verdicts.
export {
  DecisionsClient,
  type DecisionsClientOptions,
  type DecisionsLog,
  type DecisionsReadiness,
  type DecisionsReport,
  type DecisionsResourceReport,
  decisionsReadiness,
} from "./decisions_client.ts";
export { decisionsFor, decisionsWriterFolder } from "./from_config.ts";
export { LastGoodCopy, type StoredCopy } from "./last_good_copy.ts";
export { PulledResource, type PullStatus } from "./pulled_resource.ts";
