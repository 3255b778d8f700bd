// Feeds the engine process the original main server's frames (uniform random values) and measures alerts and memory: `npx tsx engine/bench/uniform_feed.ts`.

import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { waitFor } from "../_test/wait_for.ts";
import { startEngineProcess } from "./engine_process.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "120" },
    rate: { type: "string", default: "1" },
    features: { type: "string", default: "25000" },
    mode: { type: "string", default: "incident" },
    json: { type: "string" },
  },
});
const seconds = Number(args.seconds);
const rate = Number(args.rate);
const names = defaultFeatureNames(Number(args.features));
const log = (line: string) => process.stderr.write(`${line}\n`);

// The alert sink: counts alerts, bytes and events, answers 201 like the backend.
const received = { alerts: 0, bytes: 0, events: {} as Record<string, number>, largest: 0 };
const sink = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (c: Buffer) => chunks.push(c));
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    received.alerts++;
    received.bytes += body.length;
    received.largest = Math.max(received.largest, body.length);
    const event = (JSON.parse(body.toString("utf8")) as { event?: string }).event ?? "frame";
    received.events[event] = (received.events[event] ?? 0) + 1;
    response.writeHead(201, { "content-type": "application/json" }).end('{"status":"ok"}');
  });
});
await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
const sinkPort = (sink.address() as { port: number }).port;

const engine = await startEngineProcess({
  NESTJS_URL: `http://127.0.0.1:${sinkPort}`,
  ALERT_MODE: String(args.mode),
});
log(
  `[uniform] engine ready on ${engine.port} (ALERT_MODE=${args.mode}); ${seconds} s at ${rate}/s`,
);

/** What the original main server posts: every feature uniform random in [0, 1), gzip JSON. */
function uniformFrame(): Uint8Array {
  const data: Record<string, number> = {};
  for (const name of names) data[name] = Math.random();
  return new Uint8Array(gzipSync(JSON.stringify({ data })));
}

const samples: { t: number; rss_mb: number; alerts: number; alert_mb: number }[] = [];
const started = performance.now();
let sent = 0;
let refused = 0;
const total = Math.round(seconds * rate);
const sample = async () => {
  const rss = (await engine.rss()) ?? 0;
  samples.push({
    t: Math.round((performance.now() - started) / 1000),
    rss_mb: Math.round(rss / 2 ** 20),
    alerts: received.alerts,
    alert_mb: Math.round((received.bytes / 2 ** 20) * 100) / 100,
  });
};
const sampler = setInterval(sample, 10_000);
for (let i = 0; i < total; i++) {
  // Open loop: each frame leaves at its scheduled time whatever the previous answers did.
  const due = started + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const response = await fetch(`http://127.0.0.1:${engine.port}/data-enqueue`, {
    method: "POST",
    body: uniformFrame() as Uint8Array<ArrayBuffer>,
    // As the original main server posts it (the engine recognises gzip by its magic bytes).
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  await response.body?.cancel();
  if (response.status === 202) sent++;
  else refused++;
}
// Until the last windows are scored (one stream: its first window_size - 1 frames make none)
// and their alerts delivered.
await waitFor(
  async () => {
    const stats = await (await fetch(`http://127.0.0.1:${engine.port}/stats`)).json();
    return (
      stats.frames.accepted - stats.frames.scored <= 4 &&
      stats.queue.depth === 0 &&
      stats.alerts.outbox === 0
    );
  },
  "the last windows scored and their alerts delivered",
  60_000,
  100,
);
await sample();
clearInterval(sampler);
await engine.stop();
await new Promise<void>((resolve) => sink.close(() => resolve()));

const result = {
  mode: args.mode,
  seconds,
  rate,
  features: names.length,
  frames_accepted: sent,
  frames_refused: refused,
  alerts: received.alerts,
  alert_events: received.events,
  alert_bytes: received.bytes,
  largest_alert_bytes: received.largest,
  rss_mb: samples.map((s) => s.rss_mb),
  samples,
};
console.log(JSON.stringify(result, null, 2));
if (args.json) await writeFile(args.json, `${JSON.stringify(result, null, 2)}\n`);
