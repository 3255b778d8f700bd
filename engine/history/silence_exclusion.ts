// Whether a stream's frame falls in an operators' silence: a whole-stream one per frame, sensor ones at most every 10 s.
import type { DecisionsClient } from "../decisions/decisions_client.ts";
import { DEFAULT_MAX_STREAMS } from "./history_recorder.ts";

/** How long (stream time) a stream's sensor-silence answer is reused before it is asked again. */
export const SENSOR_SILENCE_RECHECK_MS = 10_000;

interface Checked {
  at: number;
  id: string | undefined;
  /** The sensors it was asked about: an answer about others is no answer. */
  sensors: readonly string[];
}

const sameSensors = (a: readonly string[], b: readonly string[]) =>
  a === b || (a.length === b.length && a.every((name, i) => name === b[i]));

/**
 * Answers "why leave this frame out" from silences (engine/decisions `silencedAt`). A silence on
 * the whole stream is looked up for every frame. One on some sensors leaves the whole frame out
 * (training needs whole frames); finding it matches each of the model's sensors against each
 * silence's globs (each window worked out once, `silencedAtAny`), so that answer is kept per stream for {@link SENSOR_SILENCE_RECHECK_MS} of the stream's time: a
 * sensor silence's edges are honoured within that. One per model (`historyRecordersFor`): the
 * answer is about that model's sensors, and it is kept for as many streams as the model's
 * recorder tracks (`maxStreams`), the least recently asked about forgotten first, so a model
 * scoring more streams than that asks again only for the streams it had not scored for longest.
 */
export class SilenceExclusion {
  readonly #decisions: Pick<DecisionsClient, "silencedAt" | "silencedAtAny">;
  readonly #maxStreams: number;
  /** Least recently asked about first. */
  readonly #checked = new Map<string, Checked>();

  constructor(
    decisions: Pick<DecisionsClient, "silencedAt" | "silencedAtAny">,
    maxStreams = DEFAULT_MAX_STREAMS,
  ) {
    this.#decisions = decisions;
    this.#maxStreams = maxStreams;
  }

  /** `silenced:<id>` when a silence covers the stream (or one of `sensors`) at `at`. */
  reason(streamId: string, at: number, sensors: readonly string[]): string | undefined {
    const when = new Date(at);
    const whole = this.#decisions.silencedAt(streamId, undefined, when);
    if (whole) return `silenced:${whole}`;
    const cached = this.#checked.get(streamId);
    if (cached) this.#checked.delete(streamId);
    if (
      cached &&
      sameSensors(cached.sensors, sensors) &&
      at >= cached.at &&
      at - cached.at < SENSOR_SILENCE_RECHECK_MS
    ) {
      this.#checked.set(streamId, cached);
      return cached.id ? `silenced:${cached.id}` : undefined;
    }
    const id = this.#decisions.silencedAtAny(streamId, sensors, when);
    if (this.#checked.size >= this.#maxStreams) {
      const [oldest] = this.#checked.keys();
      this.#checked.delete(oldest);
    }
    this.#checked.set(streamId, { at, id, sensors });
    return id ? `silenced:${id}` : undefined;
  }
}
