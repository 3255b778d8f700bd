// Engine processes on a registry of trained models, with their admin API, for activation tests.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { ModelRegistry } from "../infer/registry.ts";
import { type AlertSink, startAlertSink } from "./alert_sink.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./model_fixture.ts";

/** The bearer token the engines started here take on their admin routes. */
export const ADMIN_TOKEN = "admin-token-0123456789";

export interface RegistryEngine {
  engine: EngineProcess;
  port: number;
  /** The engine's URL for `path`. */
  url(path: string): string;
}

/**
 * Spawns the engine under Node on the registry folder `dir`, the first of `models` its default
 * model, and resolves once it is ready (killing it if it never is). It alerts `sink` once per
 * anomalous window, retries fast, takes {@link ADMIN_TOKEN} on its admin routes and logs at debug
 * level (one `batch scored` line per batch); `env` adds to that or overrides it.
 *
 * @example
 * const { engine, url } = await startRegistryEngine(reg, reg.sink, { ALERT_MODE: "incident" });
 */
export async function startRegistryEngine(
  registry: { dir: string; models: readonly { name: string }[] },
  sink: AlertSink,
  env: Record<string, string> = {},
): Promise<RegistryEngine> {
  const engine = spawnEngine("node", {
    MODEL_DIR: registry.dir,
    DEFAULT_MODEL_NAME: registry.models[0].name,
    NESTJS_URL: sink.origin,
    ADMIN_TOKEN,
    ALERT_MODE: "frame",
    LOG_LEVEL: "debug",
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
    ...env,
  });
  try {
    const port = await engine.port();
    await waitReady(port);
    return { engine, port, url: (path) => `http://127.0.0.1:${port}${path}` };
  } catch (error) {
    await engine.kill();
    throw error;
  }
}

/** Set once the suite's `before` ran (`models` and `metas` are filled in place). */
export interface TrainedRegistry {
  /** The registry's folder (the engines' `MODEL_DIR`). */
  dir: string;
  registry: ModelRegistry;
  /** The trained models, in the order asked for. */
  models: ModelFixture[];
  /** Each model's metadata as written (its `version` names it in the registry), in that order. */
  metas: ModelMetadata[];
  /** The alert receiver the engines deliver to. */
  sink: AlertSink;
  /** An engine on this registry and sink ({@link startRegistryEngine}), killed after the suite. */
  start(env?: Record<string, string>): Promise<RegistryEngine>;
}

/**
 * Before the suite's tests (registers `before` and `after`): trains `models` with the real
 * training CLI, writes them in order as versions into a fresh registry folder (the first version
 * of each name written is its active one) and starts an alert sink. After them: kills the
 * engines started on it, then closes the sink and removes the folders.
 *
 * @example
 * const reg = trainedRegistry([{ features: 12, name: "boiler" }, { features: 9, name: "pack" }]);
 * test("...", async () => {
 *   const { url } = await reg.start({ MODEL_ROUTES: "line-b-*=pack" });
 * });
 */
export function trainedRegistry(
  models: Parameters<typeof trainFixtureModel>[0][],
): TrainedRegistry {
  const engines: EngineProcess[] = [];
  const reg = {
    models: [] as ModelFixture[],
    metas: [] as ModelMetadata[],
    async start(env?: Record<string, string>) {
      const started = await startRegistryEngine(reg, reg.sink, env);
      engines.push(started.engine);
      return started;
    },
  } as TrainedRegistry;
  before(async () => {
    const trained = await Promise.allSettled(models.map((m) => trainFixtureModel(m)));
    reg.models.push(...trained.flatMap((t) => (t.status === "fulfilled" ? [t.value] : [])));
    const failed = trained.find((t) => t.status === "rejected");
    if (failed) throw failed.reason;
    reg.dir = await mkdtemp(join(tmpdir(), "registry-"));
    reg.registry = new ModelRegistry(reg.dir);
    for (const f of reg.models) {
      const onnx = await readFile(join(f.dir, `${f.name}.onnx`));
      const meta = parseModelMetadata(
        JSON.parse(await readFile(join(f.dir, `${f.name}.json`), "utf8")),
      );
      await reg.registry.write(onnx, meta);
      reg.metas.push(meta);
    }
    reg.sink = await startAlertSink();
  });
  after(async () => {
    await Promise.all(engines.map((e) => e.kill()));
    await reg.sink?.close();
    await Promise.all(reg.models.map((f) => f.remove()));
    if (reg.dir) await rm(reg.dir, { recursive: true, force: true });
  });
  return reg;
}
