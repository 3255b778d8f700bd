// "Retrain now" in a real engine process without a schedule: POST /models/{name}/retrain starts one run at a time, refuses what it cannot do, and a promoted candidate is served without a restart.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import {
  modelsResponseSchema,
  retrainResponseSchema,
  type ServedModel,
} from "../../contracts/models_api.ts";
import { NAME, plantFrames, T0, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { postFrameUntilTaken, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { readHistory } from "../history/mod.ts";
import { ModelRegistry } from "../infer/registry.ts";

const TOKEN = "retrain-now-admin-token";
const admin = { authorization: `Bearer ${TOKEN}` };

/** `GET /models`, checked against the contract. */
async function served(port: number, headers: Record<string, string> = admin) {
  const res = await fetch(`http://127.0.0.1:${port}/models`, { headers });
  assert.equal(res.status, 200);
  return v.parse(modelsResponseSchema, await res.json()).models;
}

/** `POST /models/{name}/retrain` with `body` (a string as is), answered as status and JSON. */
async function retrain(
  port: number,
  name: string,
  body?: unknown,
  headers: Record<string, string> = admin,
) {
  const res = await fetch(`http://127.0.0.1:${port}/models/${encodeURIComponent(name)}/retrain`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Posts frames one by one, waiting out back-pressure (429). */
async function feed(port: number, frames: Float32Array[]) {
  for (const [t, frame] of frames.entries()) {
    const body = JSON.stringify({
      stream_id: "line-1",
      timestamp: T0 + t * 1000,
      data: Object.fromEntries(Array.from(frame, (x, f) => [`feature_${f}`, x])),
    });
    await postFrameUntilTaken(port, body, `frame ${t}`);
  }
}

test("retrain now: one run at a time, bad requests refused, and the promoted candidate served by the same engine", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "retrain-now-"));
  const registry = join(root, "models");
  const history = join(root, "history");
  const { meta: first } = await trainInto(registry, plantFrames(1200, 1), true);
  const engine = spawnEngine("node", {
    MODEL_DIR: registry,
    DEFAULT_MODEL_NAME: NAME,
    HISTORY_DIR: history,
    HISTORY_EVERY_N: "1",
    DATA_DIR: join(root, "data"),
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    ADMIN_TOKEN: TOKEN,
    INCIDENT_CONFIRM_K: "2",
    INCIDENT_CONFIRM_N: "3",
    INCIDENT_QUIET_WINDOWS: "3",
    // No schedule: runs happen only when asked for.
    RETRAIN_EVERY_H: "0",
    RETRAIN_PROMOTE: "auto",
  });
  try {
    const port = await engine.port();
    await waitReady(port);
    const [before] = await served(port);
    assert.deepEqual(before.retrain, { every_h: 0, next_at: null });

    // Refused before anything starts: no token, an unknown model, a body off the contract.
    const strangers: Record<string, string>[] = [
      {},
      { authorization: "Bearer not-the-admin-token" },
    ];
    for (const headers of strangers) {
      const refused = await retrain(port, NAME, { reason: "x" }, headers);
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, "unauthorized");
    }
    const unknown = await retrain(port, "no-such-model", {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "model_not_found");
    for (const [body, code, field] of [
      ["{not json", "invalid_json", /JSON object/],
      [[], "invalid_request", /^\(body\): the body must be a JSON object/],
      [{ by: "" }, "invalid_request", /^by: /],
      [{ reason: "moved", version: "1.0.0" }, "invalid_request", /version/],
      [{ reason: 42 }, "invalid_request", /^reason: /],
    ] as const) {
      const bad = await retrain(port, NAME, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.error, code);
      assert.match(String(bad.body.message), field);
    }
    assert.equal((await served(port))[0].retrain?.last, undefined, "nothing started");

    // The plant's day 2, recorded in full.
    await feed(port, plantFrames(2000, 2));
    await waitFor(
      async () => (await readHistory(join(history, NAME), { model: NAME })).frames.length >= 1992,
      "the history to hold the stream",
      60_000,
      100,
    );

    const asked = await retrain(port, NAME, { by: "ana", reason: "operating point moved" });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const started = v.parse(retrainResponseSchema, asked.body);
    assert.equal(started.status, "started");
    assert.equal(started.model, NAME);
    assert.equal(started.run.outcome, "running");
    assert.equal(started.run.finished_at, null);
    assert.deepEqual(
      [started.run.requested?.by, started.run.requested?.reason],
      ["ana", "operating point moved"],
    );
    // While it runs: listed as running, and a second request (no body at all) is refused.
    assert.equal((await served(port))[0].retrain?.last?.outcome, "running");
    const again = await retrain(port, NAME);
    assert.equal(again.status, 409);
    assert.equal(again.body.error, "retrain_running");
    assert.match(String(again.body.message), new RegExp(`${NAME} is running since`));

    // The run decides like a scheduled one; the gate promotes; the engine follows the pointer.
    const model = await waitFor(
      async () => {
        const m = (await served(port))[0];
        const last = m.retrain?.last;
        if (last?.outcome === "failed") assert.fail(`the run failed: ${last.error}`);
        return last?.outcome === "decided" && m.active_version === last.candidate_version
          ? m
          : undefined;
      },
      "the asked run to promote a candidate the engine then serves",
      120_000,
      200,
    );
    const run = model.retrain?.last as NonNullable<NonNullable<ServedModel["retrain"]>["last"]>;
    assert.equal(run.started_at, started.run.started_at);
    assert.equal(run.decision, "promoted");
    assert.equal(run.activated, true);
    assert.ok(Array.isArray(run.reasons));
    assert.ok(run.finished_at && run.finished_at >= run.started_at);
    assert.deepEqual(run.requested, started.run.requested);
    assert.deepEqual(model.retrain?.last_promoted, run);
    assert.notEqual(run.candidate_version, first.version);
    assert.deepEqual(model.retrain?.next_at, null);
    // The durable record of the promotion names who asked for the run, and why.
    const record = (await new ModelRegistry(registry).activations(NAME)).at(-1);
    assert.deepEqual(
      [record?.version, record?.by, record?.reason],
      [
        run.candidate_version,
        "ana",
        "promotion gate passed (retraining asked for by ana: operating point moved)",
      ],
    );
    assert.deepEqual(model.activation, record);
    const said = (msg: string) => engine.logs().filter((l) => l.msg === msg);
    assert.deepEqual(
      said("requested retraining started").map((l) => [l.model, l.by, l.reason]),
      [[NAME, "ana", "operating point moved"]],
      "one run, logged with who asked",
    );
    // The served version switches before the previous session is closed and the switch logged.
    await waitFor(
      async () => said("model activated").some((l) => l.version === run.candidate_version),
      "the activation to be logged",
      10_000,
      50,
    );
    assert.equal(said("scheduled retraining started").length, 0, "no round without a schedule");
    assert.equal(engine.child.exitCode, null, "the engine never restarted");
    // Idle again: a new request is accepted.
    const next = await retrain(port, NAME, {});
    assert.equal(next.status, 202);
    t.diagnostic(`run: ${said("requested retraining decided")[0]?.duration_ms} ms`);
  } finally {
    await engine.kill("SIGTERM");
    await rm(root, { recursive: true, force: true });
  }
});

test("retrain now is refused with retrain_unavailable for a flat-layout model and with the history off", async () => {
  const fixture = await trainFixtureModel({ features: 6, name: "flatpump" });
  const common = {
    MODEL_DIR: fixture.dir,
    DEFAULT_MODEL_NAME: fixture.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
  };
  const flat = spawnEngine("node", common);
  const off = spawnEngine("node", { ...common, HISTORY_MAX_BYTES: "0" });
  try {
    const [flatPort, offPort] = await Promise.all(
      [flat, off].map(async (e) => {
        const port = await e.port();
        await waitReady(port);
        return port;
      }),
    );
    const refusedFlat = await retrain(flatPort, fixture.name, {}, {});
    assert.equal(refusedFlat.status, 409);
    assert.equal(refusedFlat.body.error, "retrain_unavailable");
    assert.match(String(refusedFlat.body.message), /flat layout/);
    assert.deepEqual((await served(flatPort, {}))[0].retrain, { every_h: 0, next_at: null });

    const refusedOff = await retrain(offPort, fixture.name, {}, {});
    assert.equal(refusedOff.status, 409);
    assert.equal(refusedOff.body.error, "retrain_unavailable");
    assert.match(String(refusedOff.body.message), /HISTORY_MAX_BYTES=0/);
    // Neither history nor schedule: the engine lists no retraining at all.
    assert.equal((await served(offPort, {}))[0].retrain, undefined);
  } finally {
    await Promise.all([flat.kill("SIGTERM"), off.kill("SIGTERM")]);
    await fixture.remove();
  }
});
