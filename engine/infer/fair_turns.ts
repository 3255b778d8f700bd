// Takes turns at inference between models: round-robin, so a flooded model never starves another.
import type { ScoringModel } from "./load_model.ts";

/**
 * One inference at a time across the models of an engine, handed out round-robin among the
 * models waiting. Each model's batcher scores one run per turn, so another model's window waits
 * at most for the run in progress, however far behind the flooded model is. Without it, two
 * models' sessions would each ask for every core and the OS would share them by chance.
 * O(lanes) per hand-over.
 */
export class FairTurns {
  readonly #waiting: (() => void)[][];
  #busy = false;
  #last = -1;

  constructor(lanes: number) {
    if (!Number.isInteger(lanes) || lanes < 1) {
      throw new RangeError(`'lanes' must be an integer >= 1, got ${lanes}`);
    }
    this.#waiting = Array.from({ length: lanes }, () => []);
  }

  /** Resolves when `lane` may run; call {@link give} when its run is done. */
  take(lane: number): Promise<void> {
    if (!this.#busy) {
      this.#busy = true;
      this.#last = lane;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting[lane].push(resolve));
  }

  /** Ends the current run; the next lane after the last served one with a waiter goes. */
  give(): void {
    const n = this.#waiting.length;
    for (let k = 1; k <= n; k++) {
      const lane = (this.#last + k) % n;
      const next = this.#waiting[lane].shift();
      if (next) {
        this.#last = lane;
        next();
        return;
      }
    }
    this.#busy = false;
  }

  /** `model` scoring only in `lane`'s turns. */
  wrap(model: ScoringModel, lane: number): ScoringModel {
    const turns = this;
    return {
      ...model,
      async score(input, batch, output, extra) {
        await turns.take(lane);
        try {
          await model.score(input, batch, output, extra);
        } finally {
          turns.give();
        }
      },
    };
  }
}
