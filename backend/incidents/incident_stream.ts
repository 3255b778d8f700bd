// Relays incident changes from the hub to one server-sent-event stream, rendered by the caller.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { stillSignedIn } from "../auth/still_signed_in.ts";
import type { IncidentHub } from "./incident_hub.ts";

/**
 * Answers `c` with an event stream: `ready` once subscribed, then one `incident` event per changed
 * incident with `render(id)` as its data (skipped when it returns undefined), and a keep-alive
 * comment when idle. `initial` names incidents sent right after `ready`, as if they had changed. Changes that arrive while one is being rendered are coalesced per incident.
 * Ends when the client goes away, the hub closes (shutdown), or who opened it may no longer read:
 * before each event and keep-alive the identity is checked again (its API token removed,
 * replaced or expired, its session expired), so a stream does not outlive its sign-in by more
 * than `keepAliveMs`.
 */
export function streamIncidentChanges(
  c: Context,
  hub: IncidentHub,
  render: (incidentId: string) => Promise<string | undefined>,
  keepAliveMs = 20_000,
  initial?: () => Promise<string[]>,
): Response {
  return streamSSE(c, async function relayChanges(stream) {
    const pending = new Set<string>();
    let wake: (() => void) | undefined;
    const unsubscribe = hub.subscribe((id) => {
      pending.add(id);
      wake?.();
    });
    const ended = AbortSignal.any([hub.closed, c.req.raw.signal]);
    stream.onAbort(() => wake?.());
    ended.addEventListener("abort", () => wake?.(), { once: true });
    try {
      await stream.writeSSE({ event: "ready", data: "{}" });
      // A client that reconnects missed what changed meanwhile: it gets these again first.
      for (const id of initial ? await initial() : []) pending.add(id);
      while (!stream.aborted && !stream.closed && !ended.aborted) {
        if (pending.size === 0) {
          const tick = AbortSignal.timeout(keepAliveMs);
          await new Promise<void>((resolve) => {
            wake = resolve;
            tick.addEventListener("abort", () => resolve(), { once: true });
          });
          wake = undefined;
          if (pending.size === 0 && !ended.aborted) {
            if (!(await stillSignedIn(c))) break;
            await stream.write(": keep-alive\n\n");
          }
          continue;
        }
        if (!(await stillSignedIn(c))) break;
        const [id] = pending;
        pending.delete(id);
        const data = await render(id);
        if (data !== undefined) await stream.writeSSE({ event: "incident", data });
      }
    } finally {
      unsubscribe();
    }
  });
}
