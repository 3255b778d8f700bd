// The engine's mirror of people's decisions in the backend: silences and verdicts, pulled, kept on disk.
import { setTimeout as sleep } from "node:timers/promises";
import { silenceFeedSchema } from "../../contracts/silence.ts";
import {
  type CompiledSilence,
  compileSilence,
  silenceCovers,
} from "../../contracts/silence_match.ts";
import { type IncidentVerdict, verdictFeedSchema } from "../../contracts/verdict_feed.ts";
import { PulledResource, type PullStatus } from "./pulled_resource.ts";

/** The few logger methods the client uses (the engine's consola logger has them). */
export interface DecisionsLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface DecisionsClientOptions {
  /** The backend, e.g. `http://localhost:3000` (its `/api/v1/silences/effective` and `/api/v1/verdicts`). */
  baseUrl: string;
  /** Where the last good copies live (`silences.json`, `verdicts.json`). */
  dir: string;
  /** Time between pulls. */
  pollMs: number;
  fetch?: typeof fetch;
  /** The longest one pull may take (default 10 s). */
  timeoutMs?: number;
  log?: DecisionsLog;
  /** A backend API token sent as a bearer (`AUTH_MODE=token|oidc` backends refuse pulls without one). */
  token?: string;
}

/**
 * What the engine knows of operators' decisions, from the backend (SPEC §9: the backend owns
 * them, the engine pulls and keeps the last good copy). `start()` takes the copies on disk, so
 * the answers are those of the last pull before a restart even while the backend is down, then
 * pulls every `pollMs`; a failed pull changes nothing. A checked answer is used even when its copy
 * cannot be saved (full or read-only disk): warned once, saved again at each pull.
 *
 * @example
 * const decisions = new DecisionsClient({ baseUrl, dir: ".data/engine/decisions", pollMs: 30_000 });
 * await decisions.start();
 * decisions.silencedAt("line-1", "feature_17", new Date()); // the silence's id, or undefined
 */
export class DecisionsClient {
  readonly #options: DecisionsClientOptions;
  readonly #silences: PulledResource<typeof silenceFeedSchema>;
  readonly #verdicts: PulledResource<typeof verdictFeedSchema>;
  #compiled: CompiledSilence[] = [];
  #byIncident = new Map<string, IncidentVerdict>();
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: DecisionsClientOptions) {
    if (!(options.pollMs >= 100)) {
      throw new RangeError(`'pollMs' must be at least 100, got ${options.pollMs}`);
    }
    if (!URL.canParse(options.baseUrl)) {
      throw new RangeError(`'baseUrl' must be a URL, got ${JSON.stringify(options.baseUrl)}`);
    }
    this.#options = options;
    const base = options.baseUrl.replace(/\/+$/, "");
    const common = {
      dir: options.dir,
      fetch: options.fetch,
      timeoutMs: options.timeoutMs,
      token: options.token,
    };
    this.#silences = new PulledResource({
      ...common,
      url: `${base}/api/v1/silences/effective`,
      schema: silenceFeedSchema,
      name: "silences",
    });
    this.#verdicts = new PulledResource({
      ...common,
      url: `${base}/api/v1/verdicts`,
      schema: verdictFeedSchema,
      name: "verdicts",
    });
  }

  /** Takes the copies on disk, then pulls in the background until `stop()`. */
  async start(): Promise<void> {
    const [silences, verdicts] = await Promise.all([this.#silences.load(), this.#verdicts.load()]);
    this.#refresh();
    for (const loaded of [silences, verdicts]) {
      if (typeof loaded === "object") {
        this.#options.log?.warn("a decisions copy on disk is unusable; going on without it", {
          problem: loaded.problem,
        });
      }
    }
    this.#options.log?.info("decisions loaded from disk", {
      silences: silences === true ? this.#compiled.length : null,
      verdicts: verdicts === true ? this.#byIncident.size : null,
    });
    this.#loop ??= this.#run();
  }

  /** Stops pulling; the answers stay those of the last good copy. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  /** Pulls both resources once now; resolves with each outcome. */
  async pullNow(): Promise<{ silences: PullStatus["last"]; verdicts: PullStatus["last"] }> {
    const signal = this.#stop.signal;
    const before = this.status();
    const [silences, verdicts] = await Promise.all([
      this.#silences.pull(signal),
      this.#verdicts.pull(signal),
    ]);
    if (silences === "updated" || verdicts === "updated") this.#refresh();
    // Said once when a copy cannot be saved and once when it is saved again, not every pull.
    const after = this.status();
    for (const resource of ["silences", "verdicts"] as const) {
      const problem = after[resource].unsaved;
      if (problem && !before[resource].unsaved) {
        this.#options.log?.warn(
          "a decisions copy could not be saved; using it from memory, saving again at each pull",
          { resource, problem },
        );
      } else if (!problem && before[resource].unsaved) {
        this.#options.log?.info("decisions copy saved again", { resource });
      }
    }
    return { silences, verdicts };
  }

  /**
   * The id of a silence covering `sensorName` of `streamId` at `at`, or `undefined`. Without a
   * sensor it asks about the whole stream, which only a silence with no sensor globs covers.
   * Pure: reads the copy in memory, no I/O.
   */
  silencedAt(streamId: string, sensorName: string | undefined, at: Date): string | undefined {
    const t = at.getTime();
    for (const s of this.#compiled) if (silenceCovers(s, streamId, sensorName, t)) return s.id;
    return undefined;
  }

  /** The current verdict on an incident, or `undefined` when it has none (or is unknown). */
  verdictOf(incidentId: string): IncidentVerdict | undefined {
    return this.#byIncident.get(incidentId.toLowerCase());
  }

  /** Where each resource stands. */
  status(): { silences: PullStatus; verdicts: PullStatus } {
    return { silences: this.#silences.status, verdicts: this.#verdicts.status };
  }

  #refresh(): void {
    this.#compiled = (this.#silences.value?.silences ?? []).map(compileSilence);
    this.#byIncident = new Map(
      (this.#verdicts.value?.verdicts ?? []).map((x) => [x.incident_id.toLowerCase(), x.verdict]),
    );
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failing = false;
    let pulledOnce = false;
    // At most this many quick tries (about a minute) before a backend that never answered is
    // treated as failing: then the warning, and the usual interval.
    let quickTries = 30;
    while (!signal.aborted) {
      const outcome = await this.pullNow();
      const failed = outcome.silences === "failed" || outcome.verdicts === "failed";
      if (!pulledOnce) {
        // Starting beside the backend (`npm start`), it may not answer yet: no warning for
        // that, and the next try comes soon rather than a whole poll interval later.
        if (!failed || quickTries-- <= 0) {
          pulledOnce = true;
          failing = false;
        } else {
          if (!failing) {
            this.#options.log?.info(
              "decisions not pulled yet: the backend does not answer (it may still be starting); trying again",
              {
                silences: this.#silences.status.last_error,
                verdicts: this.#verdicts.status.last_error,
              },
            );
          }
          failing = true;
          await sleep(Math.min(this.#options.pollMs, 2000), undefined, { signal }).catch(() => {});
          continue;
        }
      }
      // Said once when pulls start failing and once when they work again, not every round.
      if (failed && !failing) {
        this.#options.log?.warn("decisions pull failed; keeping the last good copy", {
          silences: this.#silences.status.last_error,
          verdicts: this.#verdicts.status.last_error,
        });
      } else if (!failed && failing) this.#options.log?.info("decisions pull works again");
      failing = failed;
      await sleep(this.#options.pollMs, undefined, { signal }).catch(() => {});
    }
  }
}
