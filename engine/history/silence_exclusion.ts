// Whether a stream's frame falls in an operators' silence: a whole-stream one per frame, sensor ones at most every 10 s.
import type { DecisionsClient } from "../decisions/decisions_client.ts";

/** How long (stream time) a stream's sensor-silence answer is reused before it is asked again. */
export const SENSOR_SILENCE_RECHECK_MS = 10_000;

/**
 * Answers "why leave this frame out" from silences (engine/decisions `silencedAt`). A silence on
 * the whole stream is looked up for every frame. One on some sensors leaves the whole frame out
 * (training needs whole frames); finding it asks about each of the model's sensors, so that
 * answer is kept per stream for {@link SENSOR_SILENCE_RECHECK_MS} of the stream's time: a
 * sensor silence's edges are honoured within that.
 */
export class SilenceExclusion {
  readonly #decisions: Pick<DecisionsClient, "silencedAt">;
  readonly #checked = new Map<string, { at: number; id: string | undefined }>();

  constructor(decisions: Pick<DecisionsClient, "silencedAt">) {
    this.#decisions = decisions;
  }

  /** `silenced:<id>` when a silence covers the stream (or one of `sensors`) at `at`. */
  reason(streamId: string, at: number, sensors: readonly string[]): string | undefined {
    const when = new Date(at);
    const whole = this.#decisions.silencedAt(streamId, undefined, when);
    if (whole) return `silenced:${whole}`;
    const key = `${sensors.length}\u001f${streamId}`;
    const cached = this.#checked.get(key);
    if (cached && at >= cached.at && at - cached.at < SENSOR_SILENCE_RECHECK_MS) {
      return cached.id ? `silenced:${cached.id}` : undefined;
    }
    let id: string | undefined;
    for (const sensor of sensors) {
      id = this.#decisions.silencedAt(streamId, sensor, when);
      if (id) break;
    }
    if (this.#checked.size > 4096) this.#checked.clear();
    this.#checked.set(key, { at, id });
    return id ? `silenced:${id}` : undefined;
  }
}
