// The pruner's settings from the backend's configuration, the two horizons checked against each other.
import { type BackendConfig, ConfigError } from "../../contracts/config.ts";

export interface RetentionSettings {
  alertsDays: number;
  incidentsDays: number;
  everyMs: number;
  batchSize: number;
  /** False when both horizons are 0: everything is kept and the pruner never runs. */
  enabled: boolean;
}

type RetentionConfig = Pick<
  BackendConfig,
  "RETENTION_ALERTS_DAYS" | "RETENTION_INCIDENTS_DAYS" | "RETENTION_EVERY_S" | "RETENTION_BATCH"
>;

/**
 * Reads the `RETENTION_*` variables of a parsed configuration. An incident keeps the summary of
 * its alerts after they go, never the other way round, so its horizon may not be the shorter
 * one (0 = forever is the longest): a {@link ConfigError} says so.
 *
 * @example const settings = retentionSettings(parseConfig(backendConfigSchema, env));
 */
export function retentionSettings(config: RetentionConfig): RetentionSettings {
  const alerts = config.RETENTION_ALERTS_DAYS;
  const incidents = config.RETENTION_INCIDENTS_DAYS;
  const forever = (days: number) => (days === 0 ? Number.POSITIVE_INFINITY : days);
  if (forever(incidents) < forever(alerts)) {
    throw new ConfigError(
      `invalid configuration: 'RETENTION_INCIDENTS_DAYS' must be 0 (forever) or at least 'RETENTION_ALERTS_DAYS' (${alerts === 0 ? "0, forever" : alerts}), got ${incidents}`,
    );
  }
  return {
    alertsDays: alerts,
    incidentsDays: incidents,
    everyMs: config.RETENTION_EVERY_S * 1000,
    batchSize: config.RETENTION_BATCH,
    enabled: alerts > 0 || incidents > 0,
  };
}
