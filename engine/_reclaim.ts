// Frees dead ArrayBuffers promptly, so a busy thread's memory stays near what it actually uses.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * V8 frees an ArrayBuffer's memory only when a garbage collection finds it dead, and it schedules
 * collections by JavaScript allocation, of which the ingest path does little: each frame's bodies
 * (socket chunks, the body, the inflated JSON) are large buffers behind small objects. Left alone
 * a thread lets ~64 MB or more of dead buffers pile up before V8 reacts, and the engine has four
 * such threads. So the ingest path reports the bytes it leaves behind, and every
 * {@link RECLAIM_BUDGET_BYTES} a minor collection (~0.2 ms) frees them. The collector is reached
 * the one way JavaScript can: V8's `--expose-gc` flag, set at run time on first use, then `gc`
 * from a fresh context (contexts created later, such as workers', also see a global `gc`). Where
 * the runtime offers no such hook (Deno) this does nothing.
 */
export const RECLAIM_BUDGET_BYTES = 4 * 2 ** 20;

type Collect = (options?: { type: "minor" | "major" }) => void;

let collect: Collect | undefined | null = null;
let pending = 0;

function collector(): Collect | undefined {
  if (collect !== null) return collect;
  collect = undefined;
  if ("Deno" in globalThis) return collect;
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    if (typeof gc === "function") collect = gc as Collect;
  } catch {
    // No collector here: V8's own schedule applies.
  }
  return collect;
}

/** Reports `bytes` of buffers that just became garbage on this thread. */
export function reclaim(bytes: number): void {
  pending += bytes;
  if (pending < RECLAIM_BUDGET_BYTES) return;
  pending = 0;
  collector()?.({ type: "minor" });
}
