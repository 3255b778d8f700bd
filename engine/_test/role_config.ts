// The config of a scale-out role run inside the test process against a test nats-server.
import { type EngineConfig, engineConfigSchema, parseConfig } from "../../contracts/config.ts";

/**
 * Parses the config of `role` on the NATS frame bus at `natsUrl`, scoring `model` on the CPU with
 * one alert per anomalous window, leases of 2 s and worker id `w1`; `env` adds the stream,
 * partitions, data folder and alert target, or overrides the rest.
 *
 * @example
 * const config = roleConfig("worker", server.url, model, { NATS_STREAM: "S", DATA_DIR: dir });
 */
export function roleConfig(
  role: "ingest" | "worker",
  natsUrl: string,
  model: { dir: string; name: string },
  env: Record<string, string>,
): EngineConfig {
  return parseConfig(engineConfigSchema, {
    FRAME_BUS: "nats",
    ENGINE_ROLE: role,
    NATS_URL: natsUrl,
    NATS_LEASE_MS: "2000",
    NATS_WORKER_ID: "w1",
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    ALERT_MODE: "frame",
    ...env,
  });
}
