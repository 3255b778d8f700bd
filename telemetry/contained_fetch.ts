// fetch run in a context of its own, so a span the runtime makes active for it stays inside it.
import { context } from "@opentelemetry/api";

/**
 * `fetch` in a copy of the caller's context. Deno's built-in instrumentation (`OTEL_DENO=true`)
 * makes a request's client span the active context and leaves it active for the caller once the
 * request is answered: a loop that fetches again made every later request, span and log line a
 * child of its first request, one trace as long as the process lived. Run through `context.with`,
 * the span stays inside the call; the request is still a child of the caller's span, if any.
 * Under Node this changes nothing.
 *
 * @example const res = await containedFetch(`${base}/api/v1/verdicts`, { signal });
 */
export const containedFetch: typeof fetch = (input, init) =>
  context.with(context.active(), () => fetch(input, init));
