import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { freePort } from "./_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "./_test/spawn_service.ts";
import type { InjectedAnomaly } from "./simulator/plant_streams.ts";

// npm start as a newcomer runs it (1 Hz, an anomaly every 20 s), checked against what the
// simulator says it injected. Three anomalies: about 90 s once the engine is ready.
const ANOMALIES = 3;
// start.ts's quiet windows (5) plus the 4 windows that still hold an anomaly's last frame, plus
// delivery: by then an anomaly's incident must be resolved.
const RESOLVE_WITHIN_MS = 15_000;

let start: ServiceProcess | undefined;
let dataDir: string;
after(async () => {
  await start?.stop("SIGINT", 30_000);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface Incident {
  incident_id: string;
  state: string;
  started_at: string;
  resolved_at: string | null;
  alerts: number;
  sensors: {
    feature_idx: number;
    feature: string;
    value?: number;
    window?: number[];
    typical?: { low: number; high: number };
  }[];
  timeline: { event: string }[];
}

test("npm start gives one incident per injected anomaly: at most 3 alerts, the injected sensor first, with its evidence, resolved after it ends", async () => {
  dataDir = await mkdtemp(join(tmpdir(), "start-incidents-"));
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  start = spawnService([...NODE_TS, "start.ts"], {
    PORT: String(backendPort),
    APP_PORT: String(enginePort),
    DATABASE_URL: "",
    DATA_DIR: dataDir,
  });
  const base = `http://127.0.0.1:${backendPort}`;
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 200, path);
    return res.json();
  };

  // Wait until the first ANOMALIES injections have ended long enough ago to be resolved.
  const injected: InjectedAnomaly[] = await waitFor(
    async () => {
      const { injected } = (await get("/data/stream")) as { injected: InjectedAnomaly[] };
      const done = injected.slice(0, ANOMALIES);
      const settled =
        done.length === ANOMALIES &&
        done.every((a) => a.end_time && Date.parse(a.end_time) + RESOLVE_WITHIN_MS < Date.now());
      return settled ? done : undefined;
    },
    `${ANOMALIES} injected anomalies, ended ${RESOLVE_WITHIN_MS} ms ago`,
    240_000,
    1000,
  );

  const metadata = JSON.parse(await readFile("models/featurewise_ocsvm.json", "utf8"));
  const modelHasTypical = metadata.typical !== undefined;
  const during = (anomaly: InjectedAnomaly, details: Incident[]) => {
    const from = Date.parse(anomaly.start_time!) - 1000;
    const to = Date.parse(anomaly.end_time!) + 5000;
    return details.filter((d) => {
      const started = Date.parse(d.started_at);
      return started >= from && started <= to;
    });
  };
  const readIncidents = async (): Promise<Incident[]> => {
    const { incidents } = await get("/api/v1/incidents?limit=100&sensors=0");
    return Promise.all(
      incidents.map((i: { incident_id: string }) => get(`/api/v1/incidents/${i.incident_id}`)),
    );
  };
  // The times checked below are frame times; on a loaded machine the alerts that carry them can
  // arrive later than the wall clock suggests, so wait (bounded) until each anomaly's incidents
  // are resolved. If that never happens, the assertions below say which anomaly is wrong.
  const details = await waitFor(
    async () => {
      const all = await readIncidents();
      const done = injected.every((a) => {
        const matching = during(a, all);
        return matching.length > 0 && matching.every((d) => d.state === "resolved");
      });
      return done ? all : undefined;
    },
    "the injected anomalies' incidents resolved",
    60_000,
    1000,
  ).catch(readIncidents);
  for (const anomaly of injected) {
    const what = `${anomaly.kind} on ${anomaly.feature_names.join(", ")} at ${anomaly.start_time}`;
    const matching = during(anomaly, details);
    assert.equal(matching.length, 1, `one incident for ${what}: ${JSON.stringify(matching)}`);
    const [incident] = matching;
    assert.ok(incident.alerts <= 3, `${what}: ${incident.alerts} alerts`);
    assert.equal(
      incident.timeline.filter((e) => e.event !== "acknowledged").length,
      incident.alerts,
    );
    assert.ok(
      anomaly.features.includes(incident.sensors[0].feature_idx),
      `${what}: first sensor is ${incident.sensors[0].feature}`,
    );
    for (const sensor of incident.sensors) {
      assert.equal(typeof sensor.value, "number", `${what}: ${sensor.feature} value`);
      assert.equal(
        sensor.window?.length,
        metadata.window_size,
        `${what}: ${sensor.feature} window`,
      );
      assert.equal(sensor.window?.at(-1), sensor.value);
      assert.equal(sensor.typical !== undefined, modelHasTypical, `${what}: typical range`);
    }
    assert.equal(incident.state, "resolved", `${what} still open`);
    assert.ok(Date.parse(incident.resolved_at!) >= Date.parse(anomaly.end_time!));
    assert.ok(
      Date.parse(incident.resolved_at!) <= Date.parse(anomaly.end_time!) + RESOLVE_WITHIN_MS,
    );
  }
});
