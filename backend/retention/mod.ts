// Retention: the pruner that bounds the database, its settings, and what the Health page reads.
export { type DatabaseHealth, type LastPrune, readDatabaseHealth } from "./database_health.ts";
export { createPruner, type PruneRun, type Pruner, type PrunerOptions } from "./pruner.ts";
export { type RetentionSettings, retentionSettings } from "./retention_settings.ts";
