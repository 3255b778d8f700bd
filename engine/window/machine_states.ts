// Which streams' machines are stopped (a model's running condition fails), and since when.

/**
 * The streams whose last frame said the machine was not running, with the frame time the stop
 * began. Bounded like the windows (`maxStreams`, oldest stop forgotten first), so a plant of
 * many machines cannot grow it without end. O(1) per frame.
 */
export class MachineStates {
  readonly #stopped = new Map<string, number>();
  readonly #maxStreams: number;

  constructor(maxStreams = 1024) {
    if (!Number.isInteger(maxStreams) || maxStreams < 1) {
      throw new RangeError(`'maxStreams' must be an integer >= 1, got ${maxStreams}`);
    }
    this.#maxStreams = maxStreams;
  }

  /** Records a frame of a stopped machine; true when it just stopped (it ran before). */
  stopped(streamId: string, timestamp: number): boolean {
    if (this.#stopped.has(streamId)) return false;
    if (this.#stopped.size >= this.#maxStreams) {
      this.#stopped.delete(this.#stopped.keys().next().value as string);
    }
    this.#stopped.set(streamId, timestamp);
    return true;
  }

  /** Records a frame of a running machine; true when it just started again. */
  running(streamId: string): boolean {
    return this.#stopped.size > 0 && this.#stopped.delete(streamId);
  }

  get size(): number {
    return this.#stopped.size;
  }

  /** The stopped streams with the time each stop began, oldest stop first. */
  list(): { stream_id: string; since: string }[] {
    return Array.from(this.#stopped, ([stream_id, since]) => ({
      stream_id,
      since: new Date(since).toISOString(),
    }));
  }
}
