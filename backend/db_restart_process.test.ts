import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import postgres from "postgres";
import { type PrivatePostgres, startPrivatePostgres } from "./_test/private_postgres.ts";
import { NODE_TS, type ServiceProcess, spawnService } from "./_test/spawn_service.ts";

// The backend process, not only its app: PostgreSQL restarted while one of its transactions
// waits (an operator's verdict queued on the incident's row). postgres.js then writes the
// transaction's ROLLBACK onto the closed connection from a callback nobody can catch
// (porsager/postgres#1208), which ended the process; it must answer again once PostgreSQL is back.
let pg: PrivatePostgres;
let backend: ServiceProcess;
let base = "";
before(async () => {
  pg = await startPrivatePostgres();
  backend = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: pg.url,
    LOG_LEVEL: "info",
    ENGINE_URL: "http://127.0.0.1:1",
    SIMULATOR_RATE_HZ: "0",
  });
  const listening = await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
  base = `http://127.0.0.1:${listening.port}`;
});
after(async () => {
  await backend?.stop("SIGTERM");
  await pg?.dispose();
});

const alert = (incident: string, event: string, at: string) => ({
  alert_id: crypto.randomUUID(),
  timestamp: at,
  frame_timestamp: at,
  anomaly_detected: true,
  num_anomalous_features: 1,
  anomalous_features: [{ feature_idx: 3, score: 0.95, feature: "feature_3", severity: 5 }],
  incident_id: incident,
  incident_started_at: "2026-11-24T08:59:00Z",
  event,
  stream_id: "line-1",
});
const postAlert = async (body: unknown) => {
  const res = await fetch(`${base}/api/v1/alert`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
};

test("backend process survives PostgreSQL restarting while one of its transactions waits", async () => {
  const incident = crypto.randomUUID();
  assert.equal(await postAlert(alert(incident, "opened", "2026-11-24T08:59:00Z")), 201);
  const own = postgres(pg.url, { max: 2, onnotice: () => {} });
  const holder = await own.reserve();
  try {
    // The incident's row held: the verdict's transaction waits on it.
    await holder`BEGIN`;
    await holder`SELECT 1 FROM incident WHERE incident_id = ${incident} FOR UPDATE`;
    const verdict = fetch(`${base}/api/v1/incidents/${incident}/verdict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ verdict: "true_positive", by: "Ana" }),
    }).then(
      (r) => r.status,
      (e) => `fetch failed: ${(e as Error).cause ?? e}`,
    );
    let waiting = false;
    for (let i = 0; i < 200 && !waiting; i++) {
      const rows = await own`SELECT 1 FROM pg_stat_activity
        WHERE application_name = 'anomaly-backend' AND wait_event_type = 'Lock'`;
      waiting = rows.length > 0;
      if (!waiting) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(waiting, "the verdict's transaction waits on the row");
    await pg.stop();
    holder.release();
    await pg.start();
    assert.equal(await verdict, 503, "the verdict is refused, to be given again");
  } finally {
    await own.end({ timeout: 0 }).catch(() => {});
  }
  // Still running, and answering once PostgreSQL is back.
  let status = 0;
  for (let i = 0; i < 100 && status !== 201; i++) {
    status = await postAlert(alert(incident, "resolved", "2026-11-24T09:05:00Z")).catch(() => 0);
    if (status !== 201) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 201, backend.lines.slice(-5).join("\n"));
  assert.equal(backend.child.exitCode, null);
});
