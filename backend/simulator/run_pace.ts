// A run's pace on a monotonic clock: when its next tick is due, the rate its frames go out at, and how far it is behind.

/** Share of the asked rate below which a run counts as falling behind. */
const BEHIND_SHARE = 0.9;

export interface RunPaceOptions {
  /** Frames per second per stream asked for. */
  rateHz: number;
  streams: number;
  /** Monotonic milliseconds (a step of the wall clock must not stall or rush a run). */
  clock?: () => number;
}

/**
 * Paces a run's ticks (one frame per stream each) and measures it. The achieved rate is over
 * the last 5 s (or 10 periods at a slow rate), so a run that recovers reads as
 * recovered; `behindMs` is the time elapsed minus the time the ticks made so far were due for:
 * a tick the run could not make in time is dropped, not made up in a burst, and stays counted.
 * Memory: O(1), a few samples of the window.
 *
 * @example const pace = createRunPace({ rateHz: 5, streams: 2 });
 * for (;;) { sendTick(); const waitMs = pace.tickDone(sent); if (waitMs > 0) await delay(waitMs); }
 */
export function createRunPace(options: RunPaceOptions) {
  const { rateHz, streams, clock = () => performance.now() } = options;
  const periodMs = 1000 / rateHz;
  const windowMs = Math.max(5000, 10 * periodMs);
  const startedAt = clock();
  // Where tick 0 is due: moved on when the run is more than a second late, so it does not burst.
  let anchor = startedAt;
  let ticks = 0;
  let endedAt: number | undefined;
  // (time, frames sent) samples, oldest first; the first is at or before the window's start.
  const samples: { t: number; sent: number }[] = [{ t: startedAt, sent: 0 }];

  const elapsed = (t: number) => t - startedAt;

  function rate(sent: number, t: number): number {
    const from = samples[0];
    const seconds = (t - from.t) / 1000;
    return seconds > 0 ? (sent - from.sent) / streams / seconds : 0;
  }

  return {
    periodMs,
    /**
     * Records a tick made, with the frames sent so far, and returns how long to wait for the
     * next (0: it is due, or the run is late and was re-anchored).
     */
    tickDone(sent: number): number {
      ticks++;
      const t = clock();
      const last = samples[samples.length - 1];
      if (t - last.t >= windowMs / 20) samples.push({ t, sent });
      while (samples.length > 1 && samples[1].t <= t - windowMs) samples.shift();
      const lag = t - (anchor + ticks * periodMs);
      if (lag > 1000) anchor += lag;
      return lag < 0 ? -lag : 0;
    },
    /** Stops the clocks: a finished run reads as it ended. */
    finish(): void {
      endedAt ??= clock();
    },
    /** Frames per stream per second sent over the last window (4 significant digits). */
    achievedHz(sent: number): number {
      return Number(rate(sent, endedAt ?? clock()).toPrecision(4));
    },
    /** How far the run is behind its schedule (ms, whole). */
    behindMs(): number {
      const t = endedAt ?? clock();
      return Math.max(0, Math.round(elapsed(t) - ticks * periodMs));
    },
    /** Whether a whole window has passed and frames went out below 90% of the asked rate in it. */
    fallingBehind(sent: number): boolean {
      const t = endedAt ?? clock();
      if (elapsed(t) < windowMs) return false;
      return rate(sent, t) < BEHIND_SHARE * rateHz;
    },
  };
}

export type RunPace = ReturnType<typeof createRunPace>;
