// `npm run bench -- --swap --models 2`: one of two served models switched to another version while both take frames.
import type { LoadOutcome, LoadStream } from "./load.ts";
import { openLoops } from "./load.ts";
import { round } from "./micro.ts";
import { ADMIN_TOKEN, type Phase, type TwoModelEngine } from "./two_model_engine.ts";
import { BIG_MODEL, SMALL_MODEL } from "./two_model_registry.ts";

type Loads = Record<string, LoadOutcome>;

export interface ModelsSwapResult {
  /** Frames/s over all streams (half to each model) and seconds per phase. */
  rate: number;
  seconds_per_phase: number;
  streams_per_model: number;
  switched: { model: string; from: string; to: string };
  /** `POST /models/{name}/activate` until it answered (load, warm-up and the switch). */
  activation_ms: number;
  activation_status: number;
  before: Phase<Loads>;
  during: Phase<Loads>;
  after: Phase<Loads>;
  /** Over the three phases, both models: answers other than 202, windows not scored, scored twice. */
  non_2xx: number;
  windows_lost: number;
  windows_doubled: number;
}

/**
 * Both models take `rate / 2` frames/s over their streams for three phases of `seconds`:
 * before, during (the small model's second version activated once a second's frames are
 * scored) and after. Each phase is drained before the next and every stream has a full window
 * before the first, so a model's windows in a phase are its accepted frames: any difference
 * is a window lost (fewer) or doubled (more).
 */
export async function swapTwoModels(
  two: TwoModelEngine,
  streams: Record<string, LoadStream[]>,
  options: { rate: number; seconds: number; versions: string[] },
): Promise<ModelsSwapResult> {
  const { rate, seconds } = options;
  const models = Object.keys(streams);
  const load = async (secs: number): Promise<Loads> => {
    const outcomes = await Promise.all(
      models.map((m) =>
        openLoops(two.client, streams[m], { rate: rate / models.length, seconds: secs }),
      ),
    );
    return Object.fromEntries(models.map((m, k) => [m, outcomes[k]]));
  };
  // The streams' first window_size - 1 frames make no window: sent before counting.
  await load(1);
  await two.drained();

  const [from, to] = options.versions;
  let activationMs = 0;
  let activationStatus = 0;
  async function activate(): Promise<void> {
    // Once the phase's load is flowing: a second's frames scored.
    // biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
    while (((await two.client.getJson("/stats")) as any).frames.scored < rate) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const t0 = performance.now();
    const answer = await fetch(
      `http://127.0.0.1:${two.engine.port}/models/${SMALL_MODEL}/activate`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ version: to, by: "bench", reason: "swap under load, two models" }),
      },
    );
    await answer.arrayBuffer();
    activationMs = round(performance.now() - t0, 1);
    activationStatus = answer.status;
  }
  const before = await two.phase(() => load(seconds));
  const during = await two.phase(async () => (await Promise.all([load(seconds), activate()]))[0]);
  const after = await two.phase(() => load(seconds));

  let non2xx = 0;
  let lost = 0;
  let doubled = 0;
  for (const p of [before, during, after]) {
    for (const m of models) {
      const sent = p.work[m];
      non2xx += sent.failed + sent.busy;
      const diff = (p.lanes[m]?.scored ?? 0) - sent.accepted;
      lost += Math.max(0, -diff);
      doubled += Math.max(0, diff);
    }
  }
  return {
    rate,
    seconds_per_phase: seconds,
    streams_per_model: streams[BIG_MODEL].length,
    switched: { model: SMALL_MODEL, from, to },
    activation_ms: activationMs,
    activation_status: activationStatus,
    before,
    during,
    after,
    non_2xx: non2xx,
    windows_lost: lost,
    windows_doubled: doubled,
  };
}
