// Retraining: the engine runs `npm run retrain` per model on a schedule (RETRAIN_EVERY_H) or when asked (POST /models/{name}/retrain); under scale-out one worker per model, by a KV lease.
export { retrainEnvOf, retrainSchedulerFor, sharedRetrainSchedulerFor } from "./from_config.ts";
export { type RetrainResult, runRetrainChild } from "./retrain_child.ts";
export { type LeaseValue, RetrainLease, RetrainLeases } from "./retrain_lease.ts";
export { type RetrainRecord, readRetrainRecord, sharedSchedule } from "./retrain_record.ts";
export {
  type AskSharedRetrainOptions,
  askSharedRetrain,
  pendingRetrainRequests,
  takeRetrainRequest,
} from "./retrain_request.ts";
export {
  RetrainBusy,
  type RetrainRequests,
  RetrainScheduler,
  type RetrainSchedulerOptions,
  type RetrainSkipped,
} from "./retrain_scheduler.ts";
export { type SharedRetrainOptions, sharedRetrainRun } from "./shared_retrain.ts";
