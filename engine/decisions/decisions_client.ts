// The engine's mirror of people's decisions in the backend: silences and verdicts, pulled, kept on disk.
import { setTimeout as sleep } from "node:timers/promises";
import { type Silence, silenceFeedSchema } from "../../contracts/silence.ts";
import {
  type CompiledSilence,
  compileSilence,
  silenceCovers,
  silenceCoversAny,
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
  /**
   * A copy not known current for this long is stale ({@link DecisionsClient.report}); default
   * three poll intervals, at least a minute.
   */
  staleAfterMs?: number;
}

/** One resource in {@link DecisionsReport}. */
export interface DecisionsResourceReport {
  /** Silences or verdicts in the copy in use; null while no copy is held (never pulled, none on disk). */
  held: number | null;
  /** When the copy in use was fetched from the backend. */
  fetched_at: string | null;
  /** Seconds since the copy was last known current (fetched, or confirmed by a `304`); null while none is held. */
  age_s: number | null;
  /** Outcome of the latest pull: `updated`, `unchanged`, `failed`, or `none` yet. */
  last: PullStatus["last"];
  last_error: string | null;
  /** Why the copy in use is not on disk (its save failed), or null. */
  unsaved: string | null;
}

/** Where the engine's copy of operators' decisions stands: `/stats` shows it, readiness its staleness. */
export interface DecisionsReport {
  /**
   * A resource has no copy, or one not known current for `stale_after_s`: silences missing from
   * it are recorded as training data, verdicts missing keep incidents out. Scoring goes on.
   */
  stale: boolean;
  /** What is stale, in words; null when nothing is. */
  why: string | null;
  stale_after_s: number;
  silences: DecisionsResourceReport;
  verdicts: DecisionsResourceReport;
}

/** What readiness says of the decisions copy: whether it is stale, and why. */
export interface DecisionsReadiness {
  stale: boolean;
  why: string | null;
}

/** The readiness part of a {@link DecisionsReport} (the whole of it is in `/stats`). */
export const decisionsReadiness = (report: DecisionsReport): DecisionsReadiness => ({
  stale: report.stale,
  why: report.why,
});

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
    // A first start has no copy yet: nothing to say until the first pull.
    if (silences === true || verdicts === true) {
      this.#options.log?.info("decisions loaded from disk", {
        silences: silences === true ? this.#compiled.length : null,
        verdicts: verdicts === true ? this.#byIncident.size : null,
      });
    }
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

  /**
   * The id of a silence covering one or more of `sensorNames` of `streamId` at `at` (a
   * whole-stream one covers any), or `undefined`: `silencedAt` over a model's sensors, each
   * silence's window worked out once. Pure: reads the copy in memory, no I/O.
   */
  silencedAtAny(streamId: string, sensorNames: readonly string[], at: Date): string | undefined {
    const t = at.getTime();
    for (const s of this.#compiled) if (silenceCoversAny(s, streamId, sensorNames, t)) return s.id;
    return undefined;
  }

  /** The silences of the copy in use (active, pending, and those ended within a day); undefined while none is held. */
  silences(): readonly Silence[] | undefined {
    return this.#silences.value?.silences;
  }

  /** The current verdict on an incident, or `undefined` when it has none (or is unknown). */
  verdictOf(incidentId: string): IncidentVerdict | undefined {
    return this.#byIncident.get(incidentId.toLowerCase());
  }

  /** Where each resource stands. */
  status(): { silences: PullStatus; verdicts: PullStatus } {
    return { silences: this.#silences.status, verdicts: this.#verdicts.status };
  }

  /** Where the copies stand at `now` (epoch ms), for `/stats` and readiness. */
  report(now = Date.now()): DecisionsReport {
    const staleAfterMs = this.#options.staleAfterMs ?? Math.max(60_000, 3 * this.#options.pollMs);
    const problems: string[] = [];
    const resource = (
      name: "silences" | "verdicts",
      status: PullStatus,
      count: number | undefined,
    ): DecisionsResourceReport => {
      const checked = status.checked_at ? Date.parse(status.checked_at) : Number.NaN;
      const ageMs = Number.isNaN(checked) ? undefined : Math.max(0, now - checked);
      if (!status.held) problems.push(`${name}: no copy held (never pulled)`);
      else if (ageMs !== undefined && ageMs > staleAfterMs) {
        problems.push(`${name}: not known current for ${Math.round(ageMs / 1000)} s`);
      }
      return {
        held: status.held ? (count ?? 0) : null,
        fetched_at: status.fetched_at,
        age_s: status.held && ageMs !== undefined ? Math.round(ageMs / 100) / 10 : null,
        last: status.last,
        last_error: status.last_error,
        unsaved: status.unsaved,
      };
    };
    const silences = resource(
      "silences",
      this.#silences.status,
      this.#silences.value?.silences.length,
    );
    const verdicts = resource(
      "verdicts",
      this.#verdicts.status,
      this.#verdicts.value?.verdicts.length,
    );
    return {
      stale: problems.length > 0,
      why: problems.length ? problems.join("; ") : null,
      stale_after_s: staleAfterMs / 1000,
      silences,
      verdicts,
    };
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
