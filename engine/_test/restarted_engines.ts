// Engine processes on a fixture model, started and killed again on DATA_DIRs of their own, for tests of what survives a restart.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type EngineProcess, spawnEngine, waitReady } from "./engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./model_fixture.ts";

export interface RestartedEngines {
  /** The model every engine serves; set once the suite's `before` ran. */
  readonly model: ModelFixture;
  /** A `DATA_DIR` named `name` under the suite's temporary folder (created by the engine). */
  dataDir(name: string): string;
  /**
   * Spawns the engine under Node on `dataDir` and resolves with its port once it is ready. Every
   * engine started here is killed (SIGKILL) after the suite.
   */
  engineOn(
    dataDir: string,
    env?: Record<string, string>,
  ): Promise<{ engine: EngineProcess; port: number }>;
}

/**
 * Registers the suite's `before` (trains a 12-feature fixture model named `modelName`, makes a
 * temporary folder) and `after` (kills the engines, removes both). Each engine alerts
 * `alertsTo()` (read when it starts: the receiver may start in the test file's own `before`) with
 * `env` added; `engineOn`'s `env` adds to that.
 *
 * @example
 * const suite = restartedEngines({ modelName: "kiln", alertsTo: () => sink.origin });
 * const { engine, port } = await suite.engineOn(suite.dataDir("first"));
 */
export function restartedEngines(options: {
  modelName: string;
  alertsTo: () => string;
  env?: Record<string, string>;
}): RestartedEngines {
  let model: ModelFixture | undefined;
  let root: string | undefined;
  const engines: EngineProcess[] = [];

  before(async () => {
    [model, root] = await Promise.all([
      trainFixtureModel({ features: 12, name: options.modelName }),
      mkdtemp(join(tmpdir(), `${options.modelName}-restarts-`)),
    ]);
  });

  after(async () => {
    for (const e of engines) await e.kill("SIGKILL");
    await model?.remove();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("restartedEngines: used before the suite's before()");
    return value;
  };

  return {
    get model() {
      return ready(model);
    },
    dataDir: (name) => join(ready(root), name),
    async engineOn(dataDir, env = {}) {
      const fixture = ready(model);
      const engine = spawnEngine("node", {
        MODEL_DIR: fixture.dir,
        DEFAULT_MODEL_NAME: fixture.name,
        NESTJS_URL: options.alertsTo(),
        DATA_DIR: dataDir,
        ...options.env,
        ...env,
      });
      engines.push(engine);
      const port = await engine.port();
      await waitReady(port);
      return { engine, port };
    },
  };
}
