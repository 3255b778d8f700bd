// Delivers one alert to the backend with ofetch: signed, traced, retried per the retry policy.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { createFetch } from "ofetch";
import { deadlineSignal } from "../../contracts/deadline.ts";
import { signWebhook } from "../../contracts/webhook_signature.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";
import type { EngineMetrics } from "../../telemetry/metrics.ts";
import { delay } from "../_delay.ts";
import { backoffDelay, isRetryableStatus, retryAfterMs } from "./retry_policy.ts";

/** An alert as kept in the outbox and sent: its id, the exact body, the trace it belongs to. */
export interface AlertRecord {
  id: string;
  body: string;
  /** W3C traceparent of the frame whose window raised the alert (continues its trace). */
  traceparent?: string;
}

/** `rejected`: a non-retryable answer (4xx); `failed`: attempts exhausted or cut short. */
export type DeliveryOutcome = "delivered" | "rejected" | "failed";

/** How a delivery ended: the outcome, attempts made, and the last answer or error. */
export interface DeliveryResult {
  outcome: DeliveryOutcome;
  attempts: number;
  status?: number;
  error?: Error;
  /** The start of the response body of a refusal (status ≥ 300), which says why. */
  reason?: string;
}

export interface AlertSenderOptions {
  url: string;
  /** Retries after the first attempt (`MAX_RETRIES`, 1..5). */
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Deadline of one attempt (`ALERT_TIMEOUT_MS`). */
  timeoutMs: number;
  signingSecret?: string;
  fetch?: typeof fetch;
  /**
   * The fetch writes `traceparent` itself, from the span active when it is called: Deno's does
   * with `OTEL_DENO=true`, appending its own to any already set, so one written here too would
   * reach the backend as `A, B`, which W3C Trace Context calls invalid. Default: true under Deno
   * (without `OTEL_DENO` nothing propagates there at all), false on Node, where nothing
   * instruments fetch.
   */
  fetchPropagates?: boolean;
  tracer?: Tracer;
  metrics?: Pick<EngineMetrics, "alertsSent" | "alertsRetried">;
  random?: () => number;
}

export type AlertSender = (record: AlertRecord, signal?: AbortSignal) => Promise<DeliveryResult>;

type Attempt = { status: number; retryAfter: string | null; reason?: string } | { error: Error };

// What a refusal's log line quotes of its body: enough for an error JSON, not a whole page.
const REASON_CHARS = 500;

/**
 * Creates the delivery function. One call makes up to `1 + maxRetries` attempts, each under its
 * own deadline, with a CLIENT span carrying `traceparent` and the Standard Webhooks signature
 * headers (when a secret is set). Backoff is exponential with full jitter; a `Retry-After` asks
 * for longer and is honoured up to `retryMaxMs`. Resolves with the result; never throws.
 *
 * @example
 * const send = createAlertSender({ url, maxRetries: 5, retryBaseMs: 200, retryMaxMs: 10_000, timeoutMs: 5000 });
 * await send({ id: alert.alert_id, body: JSON.stringify(alert) });
 */
export function createAlertSender(options: AlertSenderOptions): AlertSender {
  const { url, maxRetries, retryBaseMs, retryMaxMs, timeoutMs } = options;
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 5) {
    throw new RangeError(`'MAX_RETRIES' must be an integer 0..5, got ${maxRetries}`);
  }
  if (!(retryBaseMs > 0) || !(retryMaxMs >= retryBaseMs)) {
    throw new RangeError(
      `'RETRY_BASE_MS' must be > 0 and 'RETRY_MAX_MS' at least it, got ${retryBaseMs} and ${retryMaxMs}`,
    );
  }
  const $fetch = createFetch({ fetch: options.fetch ?? containedFetch });
  const tracer = options.tracer ?? trace.getTracer("engine");
  const random = options.random ?? Math.random;
  const fetchPropagates = options.fetchPropagates ?? "Deno" in globalThis;

  async function attempt(record: AlertRecord, n: number, signal?: AbortSignal): Promise<Attempt> {
    const parent = record.traceparent
      ? propagation.extract(ROOT_CONTEXT, { traceparent: record.traceparent })
      : context.active();
    const span = tracer.startSpan(
      "POST alert",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": "POST",
          "url.full": url,
          "alert.id": record.id,
          "http.request.resend_count": n,
        },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (!fetchPropagates) propagation.inject(active, headers);
    let deadline: ReturnType<typeof deadlineSignal> | undefined;
    try {
      if (options.signingSecret) {
        const timestamp = Math.floor(Date.now() / 1000);
        const secret = options.signingSecret;
        Object.assign(
          headers,
          await signWebhook({ secret, id: record.id, timestamp, body: record.body }),
        );
      }
      deadline = deadlineSignal(timeoutMs, signal);
      const attemptSignal = deadline.signal;
      // Run inside the span, so a fetch that traces itself (Deno's) nests its span under it.
      const response = await context.with(active, () =>
        $fetch.raw(url, {
          method: "POST",
          body: record.body,
          headers,
          retry: false,
          ignoreResponseError: true,
          responseType: "text",
          signal: attemptSignal,
        }),
      );
      span.setAttribute("http.response.status_code", response.status);
      if (response.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
      const retryAfter = response.headers.get("retry-after");
      if (response.status < 300) return { status: response.status, retryAfter };
      const body = typeof response._data === "string" ? response._data : "";
      return { status: response.status, retryAfter, reason: body.slice(0, REASON_CHARS) };
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      return { error: err };
    } finally {
      deadline?.clear();
      span.end();
    }
  }

  return async function sendAlert(record, signal) {
    for (let n = 0; ; n++) {
      const result = await attempt(record, n, signal);
      const attempts = n + 1;
      const end = (outcome: DeliveryOutcome): DeliveryResult =>
        "status" in result
          ? {
              outcome,
              attempts,
              status: result.status,
              ...(result.reason ? { reason: result.reason } : {}),
            }
          : { outcome, attempts, error: result.error };
      if ("status" in result && result.status < 300) {
        options.metrics?.alertsSent.add(1);
        return end("delivered");
      }
      if ("status" in result && !isRetryableStatus(result.status)) return end("rejected");
      if (n >= maxRetries || signal?.aborted) return end("failed");
      const asked = "status" in result ? retryAfterMs(result.retryAfter) : undefined;
      const jittered = backoffDelay(n, retryBaseMs, retryMaxMs, random);
      const wait = Math.max(jittered, Math.min(asked ?? 0, retryMaxMs));
      options.metrics?.alertsRetried.add(1);
      if (!(await delay(wait, signal))) return end("failed");
    }
  };
}
