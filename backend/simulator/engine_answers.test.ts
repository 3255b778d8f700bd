// The simulator against the real engine's refusals: a stream past MAX_STREAMS, a frame short of a feature.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { freePort } from "../_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "../_test/spawn_service.ts";
import { createPlantStreams } from "./plant_streams.ts";
import { createFrameSender } from "./send_frame.ts";
import { createSimulator, type Simulator } from "./simulator.ts";

let engine: ServiceProcess;
let engineUrl: string;
const simulators: Simulator[] = [];

before(async () => {
  const port = await freePort();
  engineUrl = `http://127.0.0.1:${port}`;
  engine = spawnService([...NODE_TS, "engine/main.ts"], {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(port),
    // Alerts go nowhere: these tests read the engine's answers to frames only.
    NESTJS_URL: "http://127.0.0.1:9",
    DEFAULT_DEVICE: "cpu",
    MAX_STREAMS: "2",
  });
  await engine.waitForLog((l) => l.msg === "engine ready", 120_000);
});
after(async () => {
  await Promise.all(simulators.map((s) => s.stop()));
  await engine?.stop("SIGTERM");
});

/** A simulator as `backend/main.ts` builds it (5 retries in the stream mode), with its log. */
function simulatorFor(nFeatures: number) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  const simulator = createSimulator({
    streams: createPlantStreams({ nFeatures, seed: 3 }),
    send: createFrameSender({ engineUrl }),
    streamSend: createFrameSender({ engineUrl, maxRetries: 5 }),
    log,
  });
  simulators.push(simulator);
  const notDelivered = () => lines.filter((l) => l.msg === "frame not delivered");
  return { simulator, notDelivered };
}

test("simulator's streams go on when the engine turns one away with 503 too_many_streams", async () => {
  const { simulator, notDelivered } = simulatorFor(25_000);
  await simulator.start({ rate_hz: 2, streams: 3, anomaly_every_s: 0 });
  // plant-2 is refused (Retry-After: 60) each turn; plant-0 and plant-1 keep being taken.
  const status = await waitFor(
    async () => {
      const s = simulator.status();
      return (s.answers["202"] ?? 0) >= 8 && (s.answers["503"] ?? 0) >= 3 ? s : undefined;
    },
    "frames of the streams the engine takes, beside the refused one",
    60_000,
    50,
  );
  await simulator.stop();
  assert.match(status.last_error ?? "", /^503 too_many_streams: .*MAX_STREAMS/);
  assert.equal(status.retries, 0, "too_many_streams is not retried");
  assert.deepEqual(
    notDelivered().map((l) => [l.stream_id, l.status, l.code, l.count]),
    [["plant-2", 503, "too_many_streams", 1]],
  );
});

test("simulator reports the engine's 422 frame_missing_features in last_error and its log", async () => {
  const { simulator, notDelivered } = simulatorFor(24_999);
  await simulator.start({ rate_hz: 4, streams: 1, anomaly_every_s: 0 });
  const status = await waitFor(
    async () => {
      const s = simulator.status();
      return (s.answers["422"] ?? 0) >= 4 ? s : undefined;
    },
    "frames the engine refuses",
    60_000,
    50,
  );
  await simulator.stop();
  assert.match(status.last_error ?? "", /^422 frame_missing_features: .*feature_24999/);
  assert.deepEqual(
    notDelivered().map((l) => [l.status, l.code, l.retrying]),
    [[422, "frame_missing_features", false]],
  );
});
