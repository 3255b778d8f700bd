// Builds a real in-process engine for tests: a model trained by the CLI, a real alert sink, a temp outbox.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { createEngine, type Engine } from "../engine.ts";
import type { AlertSink } from "./alert_sink.ts";
import type { ModelFixture } from "./model_fixture.ts";

export interface TestEngine {
  engine: Engine;
  dataDir: string;
  /** POSTs a body to `/data-enqueue` through the app. */
  post(body: BodyInit, headers?: Record<string, string>): Promise<Response>;
  // biome-ignore lint/suspicious/noExplicitAny: the /stats JSON as tests read it
  stats(): Promise<any>;
  stop(): Promise<void>;
}

/** A JSON frame body for `names` with `values`, plus optional envelope fields. */
export function jsonFrame(
  names: readonly string[],
  values: ArrayLike<number>,
  extra: { timestamp?: string | number; stream_id?: string } = {},
): string {
  const data: Record<string, number> = {};
  for (let i = 0; i < names.length; i++) data[names[i]] = values[i];
  return JSON.stringify({ data, ...extra });
}

export const gzip = (text: string) => new Uint8Array(gzipSync(text));

/**
 * Creates and starts an engine on `model` delivering to `sink`; `env` overrides the test
 * defaults (fast retries, silent log, CPU).
 */
export async function startTestEngine(
  model: ModelFixture | { dir: string; name: string },
  sink: AlertSink,
  env: Record<string, string> = {},
  options: { start?: boolean; write?: (line: string) => void; clock?: { now(): number } } = {},
): Promise<TestEngine> {
  const dataDir = await mkdtemp(join(tmpdir(), "engine-data-"));
  const config = parseConfig(engineConfigSchema, {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    DATA_DIR: dataDir,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "40",
    // Long: a busy host's slow answer is no timeout and retry (a second request for the alert).
    ALERT_TIMEOUT_MS: "5000",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    ...env,
  });
  const engine = createEngine({
    config,
    clock: options.clock,
    log: createLogger({ service: "engine", level: config.LOG_LEVEL, write: options.write }),
  });
  if (options.start !== false) await engine.start();
  return {
    engine,
    dataDir,
    post: (body, headers = {}) =>
      Promise.resolve(engine.app.request("/data-enqueue", { method: "POST", body, headers })),
    stats: async () => (await engine.app.request("/stats")).json(),
    async stop() {
      await engine.shutdown(1000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
