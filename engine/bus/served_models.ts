// The models a scale-out worker serves: each one's loaded versions, following the shared registry's pointer.
import type { EngineConfig } from "../../contracts/config.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { ModelLoadError } from "../infer/execution_provider.ts";
import { definitiveRefusal } from "../infer/follow_refusals.ts";
import {
  activeOrSeed,
  type LoadedReport,
  loadedKey,
  type NatsModelRegistry,
} from "../infer/nats_registry.ts";
import { RegistryError } from "../infer/registry.ts";
import type { VersionCache } from "../infer/version_cache.ts";
import { ServedVersions } from "./served_versions.ts";

/** A version that will not load however often it is tried: its graph or its registry entry. */
const unloadable = (error: unknown) => error instanceof ModelLoadError || definitiveRefusal(error);

/** The pointer's version a model does not serve because it cannot load it, and why. */
export interface PointerRefusal {
  version: string;
  error: string;
}

export interface ServedModelsOptions {
  config: EngineConfig;
  log: Logger;
  registry: NatsModelRegistry;
  cache: VersionCache;
  workerId: string;
  /** Aborted when the worker stops: the pointer watches end. */
  signal: AbortSignal;
}

/**
 * Per model name, its {@link ServedVersions}: the active version loaded and the pointer of the
 * shared registry followed (each newly activated version loaded, then reported under
 * `loaded.<worker>` for the replica answering the activation). `start` loads the routed models
 * before the worker is ready; a model a frame names that the worker was not configured with
 * (another `MODEL_ROUTES` on the replica) is added on first use, so the frame is still scored by
 * its model. A pointer naming a version that cannot load (moved by a tool that did not try it, as
 * `npm run train -- --publish URL --activate`) is not followed: a model starting then serves the
 * version the pointer replaced (its `from`) when that one loads, and the refusal is reported under
 * `loaded.<worker>` for the replicas' `GET /models`; with no `from` that loads the start fails.
 */
export class ServedModels {
  readonly #o: ServedModelsOptions;
  readonly #models = new Map<string, ServedVersions>();
  readonly #adding = new Map<string, Promise<ServedVersions | undefined>>();
  readonly #unknown = new Set<string>();
  /** Per model, the pointer's version it does not serve because that one does not load. */
  readonly #refused = new Map<string, PointerRefusal>();

  constructor(options: ServedModelsOptions) {
    this.#o = options;
  }

  /** Loads the active version of every model in `names` (all or nothing: a ModelLoadError). */
  async start(names: readonly string[]): Promise<void> {
    for (const name of names) {
      try {
        await this.#add(name);
      } catch (error) {
        await this.close();
        throw new ModelLoadError(`cannot load model ${name}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  }

  /** The models served, in the order they were added (`DEFAULT_MODEL_NAME` first). */
  get all(): ServedVersions[] {
    return [...this.#models.values()];
  }

  /** `DEFAULT_MODEL_NAME`'s versions (loaded by `start`). */
  get default(): ServedVersions {
    const served = this.#models.get(this.#o.config.DEFAULT_MODEL_NAME);
    if (!served) throw new Error("the default model was not loaded");
    return served;
  }

  /** Loaded already: no await on the hot path. */
  loaded(name: string): ServedVersions | undefined {
    return this.#models.get(name || this.#o.config.DEFAULT_MODEL_NAME);
  }

  /**
   * Model `name`'s versions (`""`: the default model's), added on first use; undefined for a
   * model the registry does not hold (logged once).
   */
  async get(name: string): Promise<ServedVersions | undefined> {
    const served = this.loaded(name);
    if (served) return served;
    if (this.#unknown.has(name)) return undefined;
    try {
      return await this.#add(name);
    } catch (error) {
      if (!(error instanceof RegistryError) || !/not_found|invalid_model_name/.test(error.code)) {
        throw error;
      }
      this.#unknown.add(name);
      this.#o.log.error("frames name a model the registry does not hold; they are skipped", {
        model: name,
        reason: error.message,
      });
      return undefined;
    }
  }

  /** Closes each model's versions unused for `idleMs`, but its active one. */
  async sweep(idleMs: number): Promise<void> {
    for (const served of this.#models.values()) await served.sweep(idleMs);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#models.values()].map((s) => s.close()));
  }

  /** What `loaded.<worker>` says: each model's active and loaded versions. */
  report(): LoadedReport {
    const models: LoadedReport["models"] = {};
    for (const [name, served] of this.#models) {
      const refused = this.#refused.get(name);
      models[name] = {
        active: served.active.version,
        versions: served.versions,
        ...(refused ? { refused } : {}),
      };
    }
    const first = this.#models.get(this.#o.config.DEFAULT_MODEL_NAME);
    return {
      name: this.#o.config.DEFAULT_MODEL_NAME,
      active: first?.active.version ?? "",
      versions: first?.versions ?? [],
      models,
      at: new Date().toISOString(),
    };
  }

  #add(name: string): Promise<ServedVersions | undefined> {
    let adding = this.#adding.get(name);
    if (!adding) {
      adding = this.#load(name).finally(() => this.#adding.delete(name));
      this.#adding.set(name, adding);
    }
    return adding;
  }

  async #load(name: string): Promise<ServedVersions> {
    const { config, log, registry, cache, workerId, signal } = this.#o;
    const refusals = this.#refused;
    const active = await activeOrSeed(registry, config, `worker ${workerId}`, name);
    const served = new ServedVersions({ config, log, registry, cache, name });
    try {
      await served.activate(active.version);
    } catch (error) {
      // Exiting would leave the deployment without a worker that can start until someone moves
      // the pointer back; the version it replaced scored until then, so it scores on here.
      if (!active.from || active.from === active.version || !unloadable(error)) throw error;
      try {
        await served.activate(active.from);
      } catch (previous) {
        await served.close();
        throw new ModelLoadError(
          `${(error as Error).message} (nor does the version it replaced, ${active.from}, load: ` +
            `${(previous as Error).message})`,
          { cause: error },
        );
      }
      refusals.set(name, { version: active.version, error: (error as Error).message });
      log.error(
        "the registry's active version cannot be loaded: NOT following the pointer, serving the version it replaced",
        error as Error,
        { worker: workerId, model: name, version: active.version, serving: active.from },
      );
    }
    this.#models.set(name, served);
    const reportLoaded = () =>
      registry.kv
        .put(loadedKey(workerId), JSON.stringify(this.report()))
        .then(() => {})
        .catch((error) => log.warn("could not report the loaded versions", error as Error));
    void registry.follow(
      name,
      signal,
      async function onPointer(record) {
        // Refused already (at start, or by an earlier delivery of the watch): it loads no better now.
        if (refusals.get(name)?.version === record.version) return reportLoaded();
        try {
          const before = served.active.version;
          await served.activate(record.version);
          refusals.delete(name);
          if (before !== record.version) {
            log.info("model version active", {
              worker: workerId,
              model: name,
              version: record.version,
              from: before,
            });
          }
        } catch (error) {
          if (unloadable(error)) {
            refusals.set(name, { version: record.version, error: (error as Error).message });
          } else if (refusals.get(name)?.version !== record.version) {
            // Tried again on the next pointer change: not refused, only not followed yet.
            refusals.delete(name);
          }
          log.error(
            "the registry's active version cannot be loaded; frames naming it are loaded on arrival",
            error as Error,
            { model: name, version: record.version, serving: served.active.version },
          );
        }
        await reportLoaded();
      },
      (error) => log.warn("registry pointer watch failed; watching again", error),
    );
    return served;
  }
}
