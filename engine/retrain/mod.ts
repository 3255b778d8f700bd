// Scheduled retraining (RETRAIN_EVERY_H): the engine runs `npm run retrain` per model on a schedule; under scale-out one worker per model, by a KV lease.
export { retrainEnvOf, retrainSchedulerFor, sharedRetrainSchedulerFor } from "./from_config.ts";
export { type RetrainResult, runRetrainChild } from "./retrain_child.ts";
export { type LeaseValue, RetrainLease, RetrainLeases } from "./retrain_lease.ts";
export { type RetrainRecord, readRetrainRecord, sharedSchedule } from "./retrain_record.ts";
export {
  RetrainScheduler,
  type RetrainSchedulerOptions,
  type RetrainSkipped,
} from "./retrain_scheduler.ts";
export { type SharedRetrainOptions, sharedRetrainRun } from "./shared_retrain.ts";
