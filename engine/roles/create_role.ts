// Picks what this engine process runs from ENGINE_ROLE and FRAME_BUS (engine/bus/README.md).
import { ConfigError } from "../../contracts/config.ts";
import { claimDataDirFormat } from "../data_dir_format.ts";
import { createEngine } from "../engine.ts";
import { createIngestRole } from "./ingest_role.ts";
import type { Role, RoleOptions } from "./role_shell.ts";
import { createWorkerRole } from "./worker_role.ts";

export type CreateRoleOptions = RoleOptions;

/**
 * `all` + `memory` (the default): the single-process engine, unchanged. With `FRAME_BUS=nats`:
 * `ingest` is a stateless replica, `worker` an inference worker, and `all` runs one of each in
 * the process (the HTTP port serves the ingest replica). Under scale-out the workers record the
 * training history and retrain, on a schedule (`RETRAIN_EVERY_H`) and when a replica is asked
 * (`POST /models/{name}/retrain`): one worker per model at a time, by a KV lease, publishing into
 * the shared registry; replicas never retrain. Throws a
 * {@link ConfigError} for a split role on the in-memory bus, which has nothing to split across.
 * Every role but `ingest` starts by checking DATA_DIR's layout (`../data_dir_format.ts`).
 */
export function createRole(options: CreateRoleOptions): Role {
  const role = roleFor(options);
  // An ingest replica keeps nothing in DATA_DIR; every other role checks its layout first.
  if (options.config.ENGINE_ROLE === "ingest") return role;
  return {
    app: role.app,
    async start() {
      await claimDataDirFormat(options.config.DATA_DIR);
      await role.start();
    },
    shutdown: (timeoutMs) => role.shutdown(timeoutMs),
  };
}

function roleFor(options: CreateRoleOptions): Role {
  const { config } = options;
  if (config.FRAME_BUS === "memory") {
    if (config.ENGINE_ROLE !== "all") {
      throw new ConfigError(
        `invalid configuration: 'ENGINE_ROLE' ${config.ENGINE_ROLE} needs 'FRAME_BUS' nats`,
      );
    }
    return createEngine(options);
  }
  if (config.ENGINE_ROLE === "ingest") return createIngestRole(options);
  if (config.ENGINE_ROLE === "worker") return createWorkerRole(options);
  const ingest = createIngestRole(options);
  const worker = createWorkerRole({ ...options, middleware: undefined });
  return {
    app: ingest.app,
    async start() {
      await worker.start();
      await ingest.start();
    },
    async shutdown(timeoutMs) {
      await ingest.shutdown(timeoutMs);
      await worker.shutdown(timeoutMs);
    },
  };
}
