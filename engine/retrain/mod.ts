// Scheduled retraining (RETRAIN_EVERY_H): the engine runs `npm run retrain` per model on a schedule.
export { refuseRetrainUnderScaleOut, retrainEnvOf, retrainSchedulerFor } from "./from_config.ts";
export { type RetrainResult, runRetrainChild } from "./retrain_child.ts";
export { RetrainScheduler, type RetrainSchedulerOptions } from "./retrain_scheduler.ts";
