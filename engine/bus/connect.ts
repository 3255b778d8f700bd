// Opens the frame bus from the engine's configuration, retrying while NATS is unreachable.
import type { EngineConfig } from "../../contracts/config.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { redactUrl } from "../../telemetry/redact.ts";
import { delay } from "../_delay.ts";
import { type NatsBus, openNatsBus } from "./nats_bus.ts";

/** Opens the bus, retrying every second while NATS is unreachable (readiness stays 503). */
export async function connectWithRetry(
  config: EngineConfig,
  log: Logger,
  name: string,
  signal: AbortSignal,
): Promise<NatsBus> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openNatsBus({
        url: config.NATS_URL,
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        maxBytes: config.NATS_STREAM_MAX_BYTES,
        maxAgeS: config.NATS_STREAM_MAX_AGE_S,
        name,
        timeoutMs: Math.max(1000, config.NATS_PUBLISH_TIMEOUT_MS),
      });
    } catch (error) {
      // The server answered and refused (limits, partition count): retrying changes nothing.
      const kind = (error as Error).name;
      if (kind === "PartitionMismatchError" || kind === "JetStreamApiError" || signal.aborted) {
        throw error;
      }
      if (attempt === 1 || attempt % 30 === 0) {
        log.warn("NATS not reachable; retrying every second", error as Error, {
          url: redactUrl(config.NATS_URL),
          attempt,
        });
      }
      await delay(1000, signal);
    }
  }
}
