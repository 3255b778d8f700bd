// HTTP load generation for the benchmark: keep-alive node:http, closed loop and open loop.
import * as http from "node:http";

export interface PostResult {
  status: number;
}

/** A keep-alive client for one origin; `fetch` costs more per request than the engine does. */
export function createClient(port: number, maxSockets = 32, adminToken?: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  function post(
    path: string,
    body: Uint8Array,
    headers: Record<string, string>,
  ): Promise<PostResult> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port,
          path,
          method: "POST",
          agent,
          headers: { ...headers, "content-length": String(body.length) },
        },
        (response) => {
          response.resume();
          response.on("end", () => resolve({ status: response.statusCode ?? 0 }));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }
  async function getJson<T>(path: string): Promise<T> {
    const reset = path.startsWith("/stats/reset");
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: reset ? "POST" : "GET",
      headers: reset && adminToken ? { authorization: `Bearer ${adminToken}` } : {},
    });
    return (await response.json()) as T;
  }
  return { post, getJson, close: () => agent.destroy() };
}

export type Client = ReturnType<typeof createClient>;

export interface LoadOutcome {
  sent: number;
  accepted: number;
  /** 429 answers: the queue was full (back-pressure, not an error). */
  busy: number;
  failed: number;
  seconds: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What one closed-loop connection plays: its own stream of frames, in order. */
export interface LoadStream {
  bodies: Uint8Array[];
  headers: Record<string, string>;
}

/**
 * Closed loop: one client per stream posts the stream's next frame as soon as the previous
 * answer arrives, for `seconds`. A 429 (the queue is full) makes that client pause a millisecond
 * and send the same frame again, as a producer honouring back-pressure does: skipping it would
 * put a gap in the stream, which the model may rightly flag.
 */
export async function closedLoop(
  client: Client,
  streams: LoadStream[],
  options: { seconds: number; onBusy?: () => void },
): Promise<LoadOutcome> {
  const out: LoadOutcome = { sent: 0, accepted: 0, busy: 0, failed: 0, seconds: options.seconds };
  const end = performance.now() + options.seconds * 1000;
  async function run({ bodies, headers }: LoadStream): Promise<void> {
    let next = 0;
    while (performance.now() < end) {
      const body = bodies[next % bodies.length];
      out.sent++;
      const { status } = await client.post("/data-enqueue", body, headers);
      if (status === 429) {
        out.busy++;
        options.onBusy?.();
        await pause(1);
        continue;
      }
      next++;
      if (status === 202) out.accepted++;
      else out.failed++;
    }
  }
  await Promise.all(streams.map(run));
  return out;
}

/**
 * Open loop: sends frame i at start + i/rate regardless of earlier answers (no coordinated
 * omission: a slow answer does not delay the next send), for `seconds`.
 */
export async function openLoop(
  client: Client,
  bodies: Uint8Array[],
  headers: Record<string, string>,
  options: { rate: number; seconds: number },
): Promise<LoadOutcome> {
  const out: LoadOutcome = { sent: 0, accepted: 0, busy: 0, failed: 0, seconds: options.seconds };
  const total = Math.round(options.rate * options.seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 0) await pause(wait);
    out.sent++;
    inflight.push(
      client.post("/data-enqueue", bodies[i % bodies.length], headers).then(
        ({ status }) => {
          if (status === 202) out.accepted++;
          else if (status === 429) out.busy++;
          else out.failed++;
        },
        () => {
          out.failed++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  return out;
}

/**
 * Open loops on several streams at once, each at its share of `rate` (`rate / streams.length`
 * frames/s) with its own frames in order; the outcome is their sum.
 */
export async function openLoops(
  client: Client,
  streams: LoadStream[],
  options: { rate: number; seconds: number },
): Promise<LoadOutcome> {
  const share = options.rate / streams.length;
  const outcomes = await Promise.all(
    streams.map((s) => openLoop(client, s.bodies, s.headers, { ...options, rate: share })),
  );
  const sum: LoadOutcome = { sent: 0, accepted: 0, busy: 0, failed: 0, seconds: options.seconds };
  for (const o of outcomes) {
    sum.sent += o.sent;
    sum.accepted += o.accepted;
    sum.busy += o.busy;
    sum.failed += o.failed;
  }
  return sum;
}
