// End to end: the plant simulator through the real engine into the real backend, and the incident page in Chromium, with five minutes of history.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as http from "node:http";
import { after, before, test } from "node:test";
import type { Browser, ElementHandle } from "playwright-core";
import * as v from "valibot";
import {
  ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES,
  originalMainServerAlertDto,
} from "../contracts/_original_main_server_dto.ts";
import { alertSchema } from "../contracts/alert.ts";
import { engineConfigSchema, parseConfig } from "../contracts/config.ts";
import { crossSubspaceFromOnnx } from "../engine/evidence/model_subspace.ts";
import { relatedSensors } from "../scoring/related_sensors.ts";
import { freePort } from "./_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "./_test/spawn_service.ts";
import {
  checkAccessibility,
  colourPixels,
  launchChromium,
  watchErrors,
} from "./console/_browser_checks.ts";

// The console script's colour for the onset marker.
const ONSET: [number, number, number] = [123, 31, 162];
const MODEL = new URL("../models/featurewise_ocsvm", import.meta.url).pathname;
const FEATURE = 4242;

// The engine runs at its defaults: what an operator gets without setting anything.
const DEFAULTS = parseConfig(engineConfigSchema, {});
const HISTORY = DEFAULTS.EVIDENCE_HISTORY_FRAMES;
// The opened alert goes out at the INCIDENT_CONFIRM_K-th anomalous window, and the ring holds
// HISTORY frames up to it: every reading before that is before the onset.
const BEFORE_ONSET = HISTORY - DEFAULTS.INCIDENT_CONFIRM_K;
// The engine's history is counted in frames: at 10 frames/s the five minutes of a 1 Hz plant
// (300 frames) fill in 30 s, so the whole run takes under a minute.
const RATE_HZ = 10;
// The first shift once the ring is full, short: its incident resolves after
// INCIDENT_QUIET_WINDOWS quiet windows. The second once the ring holds quiet frames again, lasting
// to the end of the run: its incident stays open (a stream that stops is resolved only
// INCIDENT_STALE_MS later), so its page is read as an operator sees it during the incident.
const SHIFT = 20;
const FIRST_AT = HISTORY + 20;
const SECOND_AT = FIRST_AT + SHIFT + DEFAULTS.INCIDENT_QUIET_WINDOWS + 40;
const FRAMES = SECOND_AT + 60;

interface Injected {
  start_time: string | null;
  end_time: string | null;
  features: number[];
}
interface Incident {
  incident_id: string;
  state: "open" | "resolved";
  started_at: string;
  kind: string;
  sensors: {
    feature_idx: number;
    history?: {
      start: string;
      step_ms: number;
      values: number[];
      onset: number;
      timestamps?: string[];
    };
    related?: { feature_idx: number; feature: string; values?: (number | null)[] }[];
  }[];
}

let backend: ServiceProcess;
let engine: ServiceProcess;
let browser: Browser;
let base: string;
/** What the engine sent, byte for byte, on its way to the backend. */
const delivered: { status: number; body: Buffer }[] = [];
let relay: http.Server;

/**
 * A relay between engine and backend that keeps each alert body exactly as the engine sent it:
 * the original main server's check is run on those bytes, not on what the backend stored.
 */
function startRelay(target: string): Promise<number> {
  relay = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", async () => {
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [k, value] of Object.entries(request.headers)) {
        if (["host", "connection", "content-length"].includes(k) || value === undefined) continue;
        headers.set(k, Array.isArray(value) ? value.join(", ") : value);
      }
      try {
        const answer = await fetch(`${target}${request.url}`, {
          method: request.method,
          headers,
          body,
        });
        const text = await answer.text();
        if (request.url === "/api/v1/alert") delivered.push({ status: answer.status, body });
        response
          .writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "" })
          .end(text);
      } catch {
        response.writeHead(502).end();
      }
    });
  });
  return new Promise((resolve) =>
    relay.listen(0, "127.0.0.1", () => resolve((relay.address() as { port: number }).port)),
  );
}

async function json<T>(path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** The time of reading `i` of a history, as the page computes it. */
function readingAt(h: NonNullable<Incident["sensors"][number]["history"]>, i: number): number {
  return h.timestamps ? Date.parse(h.timestamps[i]) : Date.parse(h.start) + i * h.step_ms;
}

before(async () => {
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  base = `http://127.0.0.1:${backendPort}`;
  backend = spawnService([...NODE_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    PORT: String(backendPort),
    DATABASE_URL: "",
    ENGINE_URL: `http://127.0.0.1:${enginePort}`,
    SIMULATOR_RATE_HZ: "0",
  });
  const relayPort = await startRelay(base);
  engine = spawnService([...NODE_TS, "engine/main.ts"], {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(enginePort),
    NESTJS_URL: `http://127.0.0.1:${relayPort}`,
    DEFAULT_DEVICE: "cpu",
  });
  await backend.waitForLog((l) => l.msg === "backend listening", 60_000);
  await engine.waitForLog((l) => l.msg === "engine ready", 120_000);
  browser = await launchChromium();
});

after(async () => {
  await fetch(`${base}/data/stream`, { method: "DELETE" }).catch(() => {});
  await browser?.close();
  await engine?.stop("SIGTERM");
  await backend?.stop("SIGTERM");
  await new Promise((resolve) => relay?.close(resolve));
});

/** The injected sensor's evidence in an incident, as `GET /api/v1/incidents/:id` serves it. */
async function sensorOf(incidentId: string) {
  const full = await json<Incident>(`/api/v1/incidents/${incidentId}`);
  return { full, sensor: full.sensors.find((s) => s.feature_idx === FEATURE) };
}

/** The partners the model's subspace names for the sensor, read straight from the graph. */
async function modelPartners(): Promise<number[]> {
  const meta = JSON.parse(await readFile(`${MODEL}.json`, "utf8"));
  const subspace = crossSubspaceFromOnnx(await readFile(`${MODEL}.onnx`), meta.n_features);
  assert.ok(subspace, "the committed model has a cross-sensor stage");
  return relatedSensors(subspace, FEATURE, 4).map((p) => p.feature_idx);
}

/** A history holds the whole ring, its onset at the incident's start and on the step. */
function assertHistory(h: NonNullable<Incident["sensors"][number]["history"]>, startedAt: string) {
  assert.equal(h.values.length, HISTORY, "the ring's frames up to the alert");
  assert.ok(
    h.onset >= BEFORE_ONSET,
    `onset ${h.onset}: at least ${BEFORE_ONSET} readings before it`,
  );
  assert.equal(new Date(readingAt(h, h.onset)).toISOString(), startedAt);
  // The onset marks the step: the jump into it dwarfs the plant's usual step between readings.
  const steps = h.values
    .slice(1, h.onset)
    .map((x, i) => Math.abs(x - h.values[i]))
    .sort((a, b) => a - b);
  const usual = steps[steps.length >> 1];
  const jump = Math.abs(h.values[h.onset] - h.values[h.onset - 1]);
  assert.ok(jump > 10 * usual, `the step at the onset (${jump}) against the usual ${usual}`);
}

let first: Incident;
let second: Incident;
let partners: number[];

test("a level shift's open incident carries five minutes of history, the model's partners, and the earlier incident as similar, on its page too", async (t) => {
  const res = await fetch(`${base}/data/stream`, {
    method: "POST",
    body: JSON.stringify({
      rate_hz: RATE_HZ,
      duration_s: FRAMES / RATE_HZ,
      anomaly_every_s: 0,
      anomalies: [
        { at_frame: FIRST_AT, duration: SHIFT },
        { at_frame: SECOND_AT, duration: FRAMES - SECOND_AT },
      ].map((a) => ({ ...a, kind: "level_shift", features: [FEATURE], magnitude: 25 })),
    }),
  });
  assert.equal(res.status, 202, await res.text());
  partners = await modelPartners();
  assert.equal(partners.includes(FEATURE), false);

  // The first incident resolved, the second opened; deadline: the run at a tenth of its rate.
  [second, first] = await waitFor(
    async () => {
      const page = await json<{ incidents: Incident[] }>(
        `/api/v1/incidents?feature_idx=${FEATURE}`,
      );
      const [newest, older] = page.incidents;
      return older?.state === "resolved" && newest.state === "open" ? page.incidents : undefined;
    },
    "a resolved and an open incident on the injected sensor",
    (FRAMES / RATE_HZ) * 10_000,
    1000,
  );
  // The run is over: every frame sent, the second shift still on when it ended.
  await waitFor(
    async () => ((await json<{ running: boolean }>("/data/stream")).running ? undefined : true),
    "the end of the run",
    (FRAMES / RATE_HZ) * 10_000,
    1000,
  );
  const status = await json<{ injected: Injected[]; frames_sent: number; answers: object }>(
    "/data/stream",
  );
  t.diagnostic(
    `simulator: ${status.frames_sent} frames, answers ${JSON.stringify(status.answers)}`,
  );
  const incidents = await json<{ incidents: Incident[] }>(
    `/api/v1/incidents?feature_idx=${FEATURE}`,
  );
  assert.deepEqual(
    incidents.incidents.map((i) => [i.incident_id, i.state]),
    [
      [second.incident_id, "open"],
      [first.incident_id, "resolved"],
    ],
    "one incident per shift, the second still open",
  );
  const [shift1, shift2] = status.injected;
  for (const [incident, shift] of [
    [first, shift1],
    [second, shift2],
  ] as const) {
    assert.deepEqual(shift.features, [FEATURE]);
    assert.ok(
      Date.parse(incident.started_at) >= Date.parse(shift.start_time!) &&
        Date.parse(incident.started_at) <= Date.parse(shift.end_time!),
      `incident ${incident.started_at} opened within its shift ${shift.start_time}..${shift.end_time}`,
    );
  }

  // Through the API: the sensor's whole ring before the onset, the model's partners with their
  // readings on the same times, a kind.
  const { full, sensor } = await sensorOf(second.incident_id);
  assert.ok(sensor?.history, "the open incident has the sensor's history");
  assertHistory(sensor.history, second.started_at);
  assert.deepEqual(
    sensor.related?.map((r) => r.feature_idx),
    partners,
    "related: the sensor's partners in the model's subspace, closest first",
  );
  for (const r of sensor.related ?? []) {
    assert.equal(r.values?.length, HISTORY, `partner ${r.feature}: readings on the same times`);
  }
  assert.match(full.kind, /^(process|sensor)$/);
  const similar = await json<{ similar: { incident_id: string }[] }>(
    `/api/v1/incidents/${second.incident_id}/similar`,
  );
  assert.deepEqual(
    similar.similar.map((s) => s.incident_id),
    [first.incident_id],
  );

  // In Chromium, the open incident's page.
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/incidents/${second.incident_id}`);
  await checkAccessibility(page, "Incident with history");
  const figure = `.sensor[data-feature-idx="${FEATURE}"]`;
  const series = JSON.parse(
    (await page.getAttribute(`${figure} > .chart`, "data-series")) ?? "null",
  ) as { t: number[]; onset: number };
  assert.equal(series.t.length, HISTORY, "every reading charted");
  assert.equal(series.onset * 1000, Date.parse(second.started_at), "the onset at its time");
  const onsetText = (await page.textContent(`${figure} p.onset`)) ?? "";
  assert.match(onsetText, new RegExp(`\\(reading \\d+ of ${HISTORY}\\)`));
  const reading = Number(/\(reading (\d+) of/.exec(onsetText)?.[1]);
  assert.ok(reading - 1 >= BEFORE_ONSET, onsetText);
  const canvas = (await page.waitForSelector(
    `${figure} > .chart canvas`,
  )) as ElementHandle<HTMLCanvasElement>;
  await page.waitForFunction(
    () => performance.getEntriesByName("first-chart").length > 0,
    undefined,
    {
      timeout: 15_000,
    },
  );
  const marker = await colourPixels(canvas, ONSET, 30);
  assert.ok(marker.count > 50, `onset marker drawn: ${JSON.stringify(marker)}`);
  assert.ok(
    marker.meanX > 0.9,
    `onset marked at the end of the five minutes: ${JSON.stringify(marker)}`,
  );
  const named = await page.$$eval(`${figure} .related li`, (items) =>
    items.map((li) => Number(li.getAttribute("data-feature-idx"))),
  );
  assert.deepEqual(named, partners, "the page names the model's partners");
  await page.waitForSelector(
    `#similar tr[data-incident="${first.incident_id}"] a[href="/incidents/${first.incident_id}"]`,
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test("the engine's alerts pass our contract and the original main server's DTO and body limit", async (t) => {
  assert.ok(first && second, "the run of the first test");
  // Opened and resolved of the first incident, opened of the second.
  assert.ok(delivered.length >= 3, `alerts delivered: ${delivered.length}`);
  let withContext = 0;
  for (const { status, body } of delivered) {
    assert.equal(status, 201);
    assert.ok(
      body.length <= ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES,
      `${body.length} bytes: within the original main server's body limit`,
    );
    const alert = JSON.parse(body.toString("utf8"));
    const ours = v.safeParse(alertSchema, alert);
    assert.ok(ours.success, JSON.stringify(ours.issues?.[0]));
    const original = v.safeParse(originalMainServerAlertDto, alert);
    assert.ok(original.success, JSON.stringify(original.issues?.[0]));
    const f = alert.anomalous_features.find(
      (x: { feature_idx: number }) => x.feature_idx === FEATURE,
    );
    if (f?.history && f.related?.every((r: { values?: unknown }) => r.values) && alert.kind) {
      withContext++;
    }
  }
  assert.ok(
    withContext >= 2,
    `opened alerts with history, related readings and kind: ${withContext}`,
  );
  t.diagnostic(`alert bodies: ${delivered.map((d) => d.body.length).join(", ")} bytes`);
});

test("a resolved incident keeps its sensor's history and related sensors", async () => {
  assert.ok(first, "the run of the first test");
  const { sensor } = await sensorOf(first.incident_id);
  assert.ok(sensor?.history, "the resolved incident still has the sensor's history");
  assertHistory(sensor.history, first.started_at);
  assert.deepEqual(
    sensor.related?.map((r) => r.feature_idx),
    partners,
  );
});
