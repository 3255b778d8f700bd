// `npm run bench -- --swap`: a model version switched while 100 frames/s flow; what the producer and the engine saw.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseModelMetadata } from "../../contracts/model.ts";
import { ModelRegistry } from "../infer/registry.ts";
import { startEngineProcess } from "./engine_process.ts";
import { createClient, type LoadOutcome, openLoop } from "./load.ts";
import { round } from "./micro.ts";

const TOKEN = "bench-admin-token-0123";

export interface SwapPhase {
  load: LoadOutcome;
  scored: number;
  latency_ms: { p50: number; p99: number; max: number };
  rss_max_mb: number;
}

export interface SwapResult {
  rate: number;
  seconds_per_phase: number;
  /** `POST /models/{name}/activate` until it answered (load, warm-up and the switch). */
  activation_ms: number;
  activation_status: number;
  before: SwapPhase;
  during: SwapPhase;
  after: SwapPhase;
  /** Over the three phases: answers other than 202, windows not scored, windows scored twice. */
  non_2xx: number;
  windows_lost: number;
  windows_doubled: number;
}

/**
 * Two versions of the committed model in a fresh registry (the same graph under two version
 * strings: loading, warming and switching cost what a retrained version costs), the engine on
 * it, then three phases of `seconds` at `rate` frames/s of one stream: before, during (the
 * other version activated once a second's frames are scored) and after. `/stats` is reset between phases and every
 * phase is drained before the next, so a phase's windows are its accepted frames: any
 * difference is a window lost (fewer) or doubled (more).
 */
export async function swapPhases(options: {
  bodies: Uint8Array[];
  headers: Record<string, string>;
  rate: number;
  seconds: number;
  env: Record<string, string>;
}): Promise<SwapResult> {
  const { bodies, headers, rate, seconds } = options;
  const dir = await mkdtemp(join(tmpdir(), "bench-registry-"));
  const source = new URL("../../models/", import.meta.url);
  const onnx = await readFile(new URL("featurewise_ocsvm.onnx", source));
  const meta = parseModelMetadata(
    JSON.parse(await readFile(new URL("featurewise_ocsvm.json", source), "utf8")),
  );
  const registry = new ModelRegistry(dir);
  const [a, b] = [`${meta.version}.a`, `${meta.version}.b`];
  await registry.write(onnx, { ...meta, version: a });
  await registry.write(onnx, { ...meta, version: b });
  const engine = await startEngineProcess({ ...options.env, MODEL_DIR: dir, ADMIN_TOKEN: TOKEN });
  const client = createClient(engine.port, 32, TOKEN);
  try {
    // The stream's first window_size - 1 frames make no window: send them before counting.
    await openLoop(client, bodies, headers, { rate, seconds: 1 });
    await drained();
    const phase = async (during?: () => Promise<void>): Promise<SwapPhase> => {
      await client.getJson("/stats/reset");
      let rssMax = 0;
      const sampler = setInterval(async () => {
        rssMax = Math.max(rssMax, (await engine.rss()) ?? 0);
      }, 250);
      const [load] = await Promise.all([
        openLoop(client, bodies, headers, { rate, seconds }),
        during?.(),
      ]);
      // biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
      const stats: any = await drained();
      clearInterval(sampler);
      return {
        load,
        scored: stats.frames.scored,
        latency_ms: {
          p50: stats.latency_ms.p50,
          p99: stats.latency_ms.p99,
          max: stats.latency_ms.max,
        },
        rss_max_mb: round(rssMax / 2 ** 20, 1),
      };
    };
    let activationMs = 0;
    let activationStatus = 0;
    const before = await phase();
    const during = await phase(async () => {
      // Once the phase's load is flowing: a second's frames scored.
      // biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
      while (((await client.getJson("/stats")) as any).frames.scored < rate) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const t0 = performance.now();
      const answer = await fetch(`http://127.0.0.1:${engine.port}/models/${meta.name}/activate`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ version: b, by: "bench", reason: "swap under load" }),
      });
      await answer.arrayBuffer();
      activationMs = round(performance.now() - t0, 1);
      activationStatus = answer.status;
    });
    const after = await phase();
    const phases = [before, during, after];
    const diff = (p: SwapPhase) => p.scored - p.load.accepted;
    return {
      rate,
      seconds_per_phase: seconds,
      activation_ms: activationMs,
      activation_status: activationStatus,
      before,
      during,
      after,
      non_2xx: phases.reduce((n, p) => n + p.load.failed + p.load.busy, 0),
      windows_lost: phases.reduce((n, p) => n + Math.max(0, -diff(p)), 0),
      windows_doubled: phases.reduce((n, p) => n + Math.max(0, diff(p)), 0),
    };
  } finally {
    client.close();
    await engine.stop();
    await rm(dir, { recursive: true, force: true });
  }

  /** Waits until the engine has scored every accepted frame (or a stuck count stops moving). */
  async function drained() {
    // biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
    let stats: any;
    let same = 0;
    let last = -1;
    for (;;) {
      stats = await client.getJson("/stats");
      if (stats.queue.depth === 0 && stats.frames.scored === last) same++;
      else same = 0;
      if (same >= 8) return stats;
      last = stats.frames.scored;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
