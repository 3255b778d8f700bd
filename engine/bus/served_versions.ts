// The model versions a scale-out worker has loaded: the active one, and those frames on the bus still name.
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { windowScorerFor } from "../batch/from_config.ts";
import type { WindowScorer } from "../batch/window_scorer.ts";
import { onnxPathOf } from "../evidence/from_config.ts";
import { ModelLoadError } from "../infer/execution_provider.ts";
import { definitiveRefusal } from "../infer/follow_refusals.ts";
import { loadVersion } from "../infer/from_config.ts";
import type { ScoringModel } from "../infer/load_model.ts";
import type { NatsModelRegistry } from "../infer/nats_registry.ts";
import { RegistryError } from "../infer/registry.ts";
import type { VersionCache } from "../infer/version_cache.ts";

/** One loaded version and the scorer that drives it. */
export interface ServedVersion {
  version: string;
  meta: ModelMetadata;
  model: ScoringModel;
  scorer: WindowScorer;
  /** Its graph in the local copy (the incident context reads the cross-sensor subspace from it). */
  onnxPath: string;
  /** `performance.now()` when a batch last used it. */
  lastUsed: number;
}

export interface ServedVersionsOptions {
  config: EngineConfig;
  log: Logger;
  registry: NatsModelRegistry;
  cache: VersionCache;
  /** The model (`DEFAULT_MODEL_NAME` or one `MODEL_ROUTES` names). */
  name: string;
}

/**
 * A frame names the version it was validated against (the ingest replica stamps the active one
 * when it publishes), and a window is scored by the version its newest frame names: so a window
 * scored again after a takeover gets the same version and the same alert id. This keeps those
 * versions loaded: the active one (preloaded when the pointer moves) and any other a frame
 * names, loaded on first use from the local cache (downloaded and verified when missing). A
 * version no frame used for `idleMs` is closed, unless it is the active one. A frame naming a
 * version the registry does not hold is scored by the active version (logged once).
 */
export class ServedVersions {
  readonly #o: ServedVersionsOptions;
  readonly #loaded = new Map<string, ServedVersion>();
  readonly #loading = new Map<string, Promise<ServedVersion>>();
  readonly #unknown = new Set<string>();
  #active: ServedVersion | undefined;

  constructor(options: ServedVersionsOptions) {
    this.#o = options;
  }

  /** The model's name. */
  get name(): string {
    return this.#o.name;
  }

  /** The active version (loaded by `activate` before anything else). */
  get active(): ServedVersion {
    if (!this.#active) throw new Error("no version was activated yet");
    return this.#active;
  }

  /** Versions loaded now, oldest first. */
  get versions(): string[] {
    return [...this.#loaded.keys()];
  }

  /** Loads `version` (when not yet) and makes it the active one. */
  async activate(version: string): Promise<ServedVersion> {
    const served = await this.#load(version);
    this.#active = served;
    return served;
  }

  /** The version a frame names, loaded; the active one for a version the registry lacks. */
  async get(version: string): Promise<ServedVersion> {
    const loaded = this.#loaded.get(version);
    if (loaded) return loaded;
    if (!version || this.#unknown.has(version)) return this.active;
    try {
      return await this.#load(version);
    } catch (error) {
      // A version that cannot be had (not held, not a version, a broken entry, a graph that
      // does not load) scores with the active one: one such frame must not stop the worker's
      // partitions, which a throw here did (the round failed and re-read the frame for ever).
      // Anything else (a registry request that timed out) fails the round, which is read again.
      if (!definitiveRefusal(error) && !(error instanceof ModelLoadError)) throw error;
      this.#unknown.add(version);
      const missing = error instanceof RegistryError && /not_found$/.test(error.code);
      this.#o.log.warn(
        missing
          ? "frames name a version the registry does not hold; the active one scores them"
          : "frames name a version that cannot be loaded; the active one scores them",
        {
          model: this.#o.name,
          version,
          active: this.active.version,
          ...(missing ? {} : { problem: (error as Error).message }),
        },
      );
      return this.active;
    }
  }

  /** Closes every loaded version but the active one unused for `idleMs` (call between batches). */
  async sweep(idleMs: number): Promise<void> {
    const now = performance.now();
    for (const [version, served] of this.#loaded) {
      if (served === this.#active || now - served.lastUsed < idleMs) continue;
      this.#loaded.delete(version);
      this.#o.log.info("model version unloaded", {
        model: this.#o.name,
        version,
        active: this.#active?.version,
      });
      await served.model.close();
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#loaded.values()].map((s) => s.model.close()));
    this.#loaded.clear();
  }

  #load(version: string): Promise<ServedVersion> {
    const loaded = this.#loaded.get(version);
    if (loaded) return Promise.resolve(loaded);
    let loading = this.#loading.get(version);
    if (!loading) {
      loading = this.#fetch(version).finally(() => this.#loading.delete(version));
      this.#loading.set(version, loading);
    }
    return loading;
  }

  async #fetch(version: string): Promise<ServedVersion> {
    const { config, log, registry, cache, name } = this.#o;
    // Checked in the registry first (published, intact), then copied and verified locally.
    await registry.metadata(name, version);
    const { ref, meta } = await cache.ensure(name, version);
    const model = await loadVersion(config, ref, log, meta);
    const served: ServedVersion = {
      version,
      meta,
      model,
      scorer: windowScorerFor(config, model),
      onnxPath: onnxPathOf(ref),
      lastUsed: performance.now(),
    };
    this.#loaded.set(version, served);
    log.info("model version loaded", { model: name, version, provider: model.provider });
    return served;
  }
}
