// `npm run bench -- --models 2 --flood`: one model's streams sent as fast as the engine takes them, the other's steady.
import { closedLoop, type LoadOutcome, type LoadStream, openLoops } from "./load.ts";
import { round } from "./micro.ts";
import type { Phase, TwoModelEngine } from "./two_model_engine.ts";
import { BIG_MODEL, SMALL_MODEL } from "./two_model_registry.ts";

interface FloodLoads {
  steady: LoadOutcome;
  flood?: LoadOutcome;
}

export interface FloodResult {
  steady: { model: string; rate: number; streams: number };
  flood: { model: string; connections: number };
  seconds_per_phase: number;
  /** The steady model alone, then with the other flooded, then alone again. */
  alone: Phase<FloodLoads>;
  flooded: Phase<FloodLoads>;
  after: Phase<FloodLoads>;
  /** The flooded model in its phase: frames/s answered 202 (all scored: its queue is drained), 429s. */
  flood_accepted_per_s: number;
  flood_busy: number;
  /** Answers other than 202 to the steady model's frames, over the three phases (must be 0). */
  steady_non_2xx: number;
}

/**
 * The small model's streams at a steady `rate` for three phases of `seconds`: alone, with the
 * big model's streams flooded (a closed loop per stream that resends a frame answered 429 after
 * a millisecond; it starts a second before the steady frames and ends after them, so every
 * steady frame meets the flood), alone again.
 */
export async function floodTwoModels(
  two: TwoModelEngine,
  streams: { steady: LoadStream[]; flood: LoadStream[] },
  options: { rate: number; seconds: number },
): Promise<FloodResult> {
  const { rate, seconds } = options;
  const steady = () => openLoops(two.client, streams.steady, { rate, seconds });
  // A full window on every stream before counting; the flood's warm-up fills its windows.
  await Promise.all([
    openLoops(two.client, streams.steady, { rate, seconds: 1 }),
    closedLoop(two.client, streams.flood, { seconds: 2 }),
  ]);
  await two.drained();

  const alone = await two.phase(async () => ({ steady: await steady() }));
  const flooded = await two.phase(async () => {
    // The steady model is timed once the flood saturates: the big model's queue refuses frames.
    let saturated = () => {};
    const full = new Promise<void>((resolve) => {
      saturated = resolve;
    });
    const flood = closedLoop(two.client, streams.flood, {
      seconds: seconds + 2,
      onBusy: saturated,
    });
    await Promise.race([full, flood]);
    return { steady: await steady(), flood: await flood };
  });
  const after = await two.phase(async () => ({ steady: await steady() }));

  const flood = flooded.work.flood!;
  return {
    steady: { model: SMALL_MODEL, rate, streams: streams.steady.length },
    flood: { model: BIG_MODEL, connections: streams.flood.length },
    seconds_per_phase: seconds,
    alone,
    flooded,
    after,
    flood_accepted_per_s: round(flood.accepted / flood.seconds, 1),
    flood_busy: flood.busy,
    steady_non_2xx: [alone, flooded, after].reduce(
      (n, p) => n + p.work.steady.failed + p.work.steady.busy,
      0,
    ),
  };
}
