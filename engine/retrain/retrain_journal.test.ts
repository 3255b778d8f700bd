// The retraining schedule across restarts of a real engine process: a round that came due while it was down runs at once, the last runs are still shown, a run it was killed during is shown as failed.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema, type ServedModel } from "../../contracts/models_api.ts";
import { NAME, plantFrames, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { spawnEngine, waitReady } from "../_test/engine_process.ts";
import { waitFor } from "../_test/wait_for.ts";

const TOKEN = "retrain-journal-admin-token";
const HOUR = 3_600_000;

async function served(port: number): Promise<ServedModel> {
  const res = await fetch(`http://127.0.0.1:${port}/models`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 200);
  return v.parse(modelsResponseSchema, await res.json()).models[0];
}

test("a restarted engine runs the round that came due while it was down, keeps the schedule's clock, and shows a run it was killed during as failed", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "retrain-journal-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  const registry = join(root, "models");
  const data = join(root, "data");
  await trainInto(registry, plantFrames(1200, 1), true);
  // The previous process ended its last round two hours ago, with RETRAIN_EVERY_H=1.
  const kept = {
    started_at: new Date(Date.now() - 2 * HOUR - 60_000).toISOString(),
    finished_at: new Date(Date.now() - 2 * HOUR).toISOString(),
    outcome: "decided",
    decision: "held",
    reasons: ["kept from before the restart"],
  };
  await mkdir(data, { recursive: true });
  const journal = join(data, "retraining.json");
  await writeFile(
    journal,
    JSON.stringify({
      since: kept.finished_at,
      models: { [NAME]: { last: kept, last_promoted: { ...kept, decision: "promoted" } } },
    }),
  );
  const env = {
    MODEL_DIR: registry,
    DEFAULT_MODEL_NAME: NAME,
    HISTORY_DIR: join(root, "history"),
    DATA_DIR: data,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    ADMIN_TOKEN: TOKEN,
    RETRAIN_EVERY_H: "1",
  };
  const startedAt = new Date().toISOString();
  const first = spawnEngine("node", env);
  t.after(() => first.kill("SIGKILL"));
  const port = await first.port();
  await waitReady(port);
  const before = await served(port);
  assert.equal(before.retrain?.last_promoted?.reasons[0], "kept from before the restart");

  // Overdue: the round runs at once (the empty history holds it), not an hour after the start.
  const ran = await waitFor(
    async () => {
      const last = (await served(port)).retrain?.last;
      return last && last.started_at >= startedAt && last.outcome === "decided" ? last : undefined;
    },
    "the overdue round to run",
    60_000,
    100,
  );
  assert.match(ran.reasons.join(), /too little history/);
  const after = await served(port);
  const nextAt = Date.parse(after.retrain?.next_at ?? "");
  assert.ok(
    nextAt - Date.parse(ran.finished_at as string) >= HOUR - 1000,
    "an hour after it ended",
  );

  // A run asked for, and the engine killed while it runs.
  const asked = await fetch(`http://127.0.0.1:${port}/models/${NAME}/retrain`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ by: "ana", reason: "moved" }),
  });
  assert.equal(asked.status, 202, await asked.text());
  await waitFor(
    async () => JSON.parse(await readFile(journal, "utf8")).models[NAME].last.outcome === "running",
    "the running run to be kept",
    10_000,
    20,
  );
  await first.kill("SIGKILL");

  const second = spawnEngine("node", env);
  t.after(() => second.kill("SIGKILL"));
  const port2 = await second.port();
  await waitReady(port2);
  const restarted = await served(port2);
  const last = restarted.retrain?.last;
  assert.equal(last?.outcome, "failed");
  assert.equal(last?.requested?.by, "ana");
  assert.match(last?.error ?? "", /the engine stopped during this run/);
  assert.equal(
    restarted.retrain?.next_at,
    after.retrain?.next_at,
    "the schedule's clock goes on from the round's end, not from this start",
  );
  await second.kill("SIGTERM");
});
