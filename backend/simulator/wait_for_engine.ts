// Waits until the engine reports ready, so a simulator run does not start by failing frames.
import { deadlineSignal } from "../../contracts/deadline.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";
import { delay } from "./send_frame.ts";

/**
 * Polls `{engineUrl}/health/ready` until it answers 200 or `signal` aborts. Each probe has its own
 * short deadline; between probes it waits `intervalMs`.
 */
export async function waitForEngine(
  engineUrl: string,
  signal: AbortSignal,
  options: { intervalMs?: number; fetch?: typeof fetch } = {},
): Promise<void> {
  const { intervalMs = 500, fetch: doFetch = containedFetch } = options;
  const url = `${engineUrl.replace(/\/+$/, "")}/health/ready`;
  while (true) {
    const deadline = deadlineSignal(2000, signal);
    try {
      const res = await doFetch(url, { signal: deadline.signal });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      if (signal.aborted) throw signal.reason;
      // Not up yet: try again.
    } finally {
      deadline.clear();
    }
    await delay(intervalMs, signal);
  }
}
