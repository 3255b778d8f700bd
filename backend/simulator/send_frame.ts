// Sends one gzip frame to the engine's /data-enqueue, with the simulator's retry policy.
import { deadlineSignal } from "../../contracts/deadline.ts";
import { HttpError } from "../../contracts/error.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";

/** What the engine answered. */
export interface EngineAnswer {
  status: number;
  body: unknown;
  /** Attempts made (1 = no retry). */
  attempts: number;
  /** The answer's headers worth passing on (`content-type`, `retry-after`), as sent. */
  headers: Record<string, string>;
}

export interface FrameSenderOptions {
  engineUrl: string;
  fetch?: typeof fetch;
  /** Per-attempt deadline (ms). */
  timeoutMs?: number;
  /** Retries after the first attempt for retryable answers (0 = none). */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Optional bearer token the engine may require (INGEST_TOKEN). */
  token?: string;
}

/** An attempt that failed and is about to be tried again. */
export interface FailedAttempt {
  /** Which attempt failed (1 = the first). */
  attempt: number;
  /** The engine's status; absent when it was not reached (network error, timeout). */
  status?: number;
  /** The engine's stable `error` code (`http_<status>` without one), or `engine_unreachable`. */
  code: string;
  message: string;
  /** How long the sender waits before the next attempt (ms). */
  waitMs: number;
}

/** Per-send options. */
export interface SendOptions {
  /** Called for each failed attempt before the sender waits to retry it (not for the last). */
  onRetry?: (failure: FailedAttempt) => void;
}

/** Statuses worth another attempt of the same frame. */
const RETRYABLE_STATUSES = new Set([
  408, // request timeout: the body did not arrive in time
  429, // queue full: back off as Retry-After says (up to retryMaxMs)
  500, // internal error: may be transient
  502, // bad gateway: a proxy lost the engine
  503, // model loading or draining
  504, // gateway timeout
]);

/**
 * Engine error codes that come with a retryable status but that no wait within the sender's
 * backoff changes: answered at once rather than retried.
 */
const FINAL_CODES = new Set([
  "too_many_streams", // 503: a place frees only once another stream is silent INCIDENT_STALE_MS (5 min)
]);

/** The engine's `{error, message}` in an answer's body, or a stand-in naming the status. */
export function engineError(status: number, body: unknown): { code: string; message: string } {
  if (body && typeof body === "object" && typeof (body as { error?: unknown }).error === "string") {
    const { error, message } = body as { error: string; message?: unknown };
    return { code: error, message: typeof message === "string" ? message : "" };
  }
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { code: `http_${status}`, message: (text ?? "").slice(0, 200) };
}

/** Headers of the engine's answer that `POST /data/send` passes on. */
const PASSED_HEADERS = ["content-type", "retry-after"];

/** Waits `ms` unless `signal` aborts first (then rejects with its reason). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Creates `send(gzipBody, signal, { onRetry })`: POSTs to `{engineUrl}/data-enqueue` and returns the engine's
 * status and JSON body. Network errors, timeouts and the statuses in `RETRYABLE_STATUSES` are
 * retried with exponential backoff and full jitter, unless the answer's code is in `FINAL_CODES`
 * (429 and 503 wait at least `Retry-After`, but never longer than `retryMaxMs`: a sender that
 * waited the engine's 60 s five times held its caller five minutes); when retries run out the
 * last answer is returned, or a network failure becomes a 502 `engine_unreachable` HttpError.
 * `onRetry` hears of each failed attempt as it happens.
 */
export function createFrameSender(options: FrameSenderOptions) {
  const doFetch = options.fetch ?? containedFetch;
  const url = `${options.engineUrl.replace(/\/+$/, "")}/data-enqueue`;
  const { timeoutMs = 10_000, maxRetries = 0, retryBaseMs = 100, retryMaxMs = 5000 } = options;
  if (!(maxRetries >= 0 && maxRetries <= 100)) {
    throw new RangeError(`'maxRetries' must be 0..100, got ${maxRetries}`);
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-encoding": "gzip",
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;

  return async function sendFrame(
    body: Uint8Array,
    signal?: AbortSignal,
    sendOptions: SendOptions = {},
  ): Promise<EngineAnswer> {
    for (let attempt = 1; ; attempt++) {
      const deadline = deadlineSignal(timeoutMs, signal);
      let wait: number;
      let failure: Omit<FailedAttempt, "waitMs">;
      try {
        const res = await doFetch(url, {
          method: "POST",
          headers,
          body: body as Uint8Array<ArrayBuffer>,
          signal: deadline.signal,
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not JSON: hand back the text as it came.
        }
        const refused = RETRYABLE_STATUSES.has(res.status) ? engineError(res.status, parsed) : null;
        if (refused === null || FINAL_CODES.has(refused.code) || attempt > maxRetries) {
          const passed: Record<string, string> = {};
          for (const name of PASSED_HEADERS) {
            const value = res.headers.get(name);
            if (value !== null) passed[name] = value;
          }
          return { status: res.status, body: parsed, attempts: attempt, headers: passed };
        }
        wait = Math.min(retryMaxMs, retryAfterMs(res.headers.get("retry-after")) ?? 0);
        failure = { attempt, status: res.status, ...refused };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const message = `engine at ${url}: ${(error as Error).message}`;
        if (attempt > maxRetries) throw new HttpError(502, "engine_unreachable", message);
        wait = 0;
        failure = { attempt, code: "engine_unreachable", message };
      } finally {
        deadline.clear();
      }
      const backoff = Math.random() * Math.min(retryMaxMs, retryBaseMs * 2 ** (attempt - 1));
      const waitMs = Math.max(wait, backoff);
      sendOptions.onRetry?.({ ...failure, waitMs });
      await delay(waitMs, signal);
    }
  };
}

export type FrameSender = ReturnType<typeof createFrameSender>;
