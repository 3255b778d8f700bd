import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { jsonFrame } from "./_test/engine_harness.ts";
import type { EngineProcess } from "./_test/engine_process.ts";
import { ADMIN_TOKEN, startRegistryEngine, trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";
import { ModelRegistry } from "./infer/registry.ts";

const STREAMS = ["boiler-1", "boiler-2", "boiler-3"];
const BASE_TS = Date.UTC(2026, 11, 1);

// A real engine process on a registry with three versions of one model: two with the same
// sensors (trained on different stretches), one with other sensors.
describe("model activation in a running engine", () => {
  const reg = trainedRegistry([
    { features: 12, drifting: 2, name: "boiler", frames: 300 },
    { features: 12, drifting: 2, name: "boiler", frames: 360 },
    { features: 9, name: "boiler", frames: 300 },
  ]);
  const { models: fixtures, metas } = reg;
  let engine: EngineProcess;
  let url: (path: string) => string;

  before(async () => {
    assert.equal(new Set(metas.map((m) => m.version)).size, 3, "three distinct versions");
    ({ engine, url } = await reg.start());
  });

  const activate = (body: unknown, token = ADMIN_TOKEN) =>
    fetch(url("/models/boiler/activate"), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const send = (stream: string, i: number, f = fixtures[0]) =>
    fetch(url("/data-enqueue"), {
      method: "POST",
      body: jsonFrame(f.featureNames, f.normalFrame(i), {
        stream_id: stream,
        timestamp: BASE_TS + i * 1000,
      }),
    });
  /** Windows scored per stream and window end, from the engine's per-batch lines. */
  const scored = () => {
    const seen = new Map<string, number>();
    for (const line of engine.logs().filter((l) => l.msg === "batch scored")) {
      for (const f of line.frames as { stream_id: string; timestamp: string }[]) {
        const key = `${f.stream_id}@${f.timestamp}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
    return seen;
  };

  test("activates a version and rolls back while frames flow: no refusal, no window lost or doubled", async () => {
    const W = metas[0].window_size;
    const FRAMES = 60;
    const statuses: number[] = [];
    const answers: Record<string, unknown>[] = [];
    for (let i = 0; i < FRAMES; i++) {
      const sent = await Promise.all(STREAMS.map((s) => send(s, i)));
      statuses.push(...sent.map((r) => r.status));
      if (i === 20 || i === 40) {
        // Not awaited before the next frames: the switch happens while they arrive.
        const version = i === 20 ? metas[1].version : metas[0].version;
        const pending = activate({ version, by: "test", reason: i === 20 ? "newer" : "rollback" });
        for (let j = 0; j < 3; j++) {
          i++;
          const more = await Promise.all(STREAMS.map((s) => send(s, i)));
          statuses.push(...more.map((r) => r.status));
        }
        const answer = await pending;
        assert.equal(answer.status, 200);
        answers.push((await answer.json()) as Record<string, unknown>);
      }
    }
    assert.deepEqual([...new Set(statuses)], [202], "every frame accepted");
    assert.deepEqual(
      answers.map((a) => [a.from, a.version, a.windows_reset]),
      [
        [metas[0].version, metas[1].version, false],
        [metas[1].version, metas[0].version, false],
      ],
    );
    const expected = STREAMS.length * (FRAMES - W + 1);
    const seen = await waitFor(() => {
      const s = scored();
      return s.size === expected ? s : undefined;
    }, "every window scored");
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      "no window scored twice",
    );
    for (const s of STREAMS) {
      for (let i = W - 1; i < FRAMES; i++) {
        assert.ok(
          seen.has(`${s}@${new Date(BASE_TS + i * 1000).toISOString()}`),
          `${s} window ${i}`,
        );
      }
    }
    // Windows were carried over: no stream started again (it would have skipped W - 1 windows).
    const listing = (await (
      await fetch(url("/models"), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as {
      models: {
        active_version: string;
        versions: string[];
        live_streams: number;
        activation: { reason: string };
      }[];
    };
    assert.equal(listing.models[0].active_version, metas[0].version);
    assert.deepEqual(listing.models[0].versions.sort(), metas.map((m) => m.version).sort());
    assert.equal(listing.models[0].live_streams, STREAMS.length);
    assert.equal(listing.models[0].activation.reason, "rollback");
    const history = await new ModelRegistry(reg.dir).activations("boiler");
    assert.deepEqual(
      history.slice(-2).map((a) => [a.from, a.version, a.by]),
      [
        [metas[0].version, metas[1].version, "test"],
        [metas[1].version, metas[0].version, "test"],
      ],
    );
    // Readiness reports the version scoring now.
    const ready = (await (await fetch(url("/health/ready"))).json()) as {
      model: { version: string };
    };
    assert.equal(ready.model.version, metas[0].version);
  });

  test("every alert names the model and the version that scored its window", async () => {
    const f = fixtures[0];
    const spike = (i: number) =>
      fetch(url("/data-enqueue"), {
        method: "POST",
        body: jsonFrame(f.featureNames, f.spikedFrame(i, 3), {
          stream_id: "boiler-9",
          timestamp: BASE_TS + i * 1000,
        }),
      });
    for (let i = 0; i < 8; i++)
      assert.equal((await (i >= 6 ? spike(i) : send("boiler-9", i))).status, 202);
    const alerts = await waitFor(() => {
      const a = reg.sink.requests
        .map(
          (r) =>
            JSON.parse(r.body) as { stream_id: string; model_name: string; model_version: string },
        )
        .filter((x) => x.stream_id === "boiler-9");
      return a.length > 0 ? a : undefined;
    }, "the spike's alerts");
    for (const a of alerts)
      assert.deepEqual([a.model_name, a.model_version], ["boiler", metas[0].version]);
  });

  test("follows the registry's pointer when another process activates a version", async () => {
    const registry = new ModelRegistry(reg.dir);
    const records = (await registry.activations("boiler")).length;
    const serving = async () =>
      ((await (await fetch(url("/health/ready"))).json()) as { model: { version: string } }).model
        .version;
    // What `npm run train -- --activate` or a retraining's promotion does: move the pointer.
    await registry.activate("boiler", metas[1].version, { by: "retrain", reason: "promoted" });
    await waitFor(async () => (await serving()) === metas[1].version, "the engine follows");
    await registry.activate("boiler", metas[0].version, { by: "retrain", reason: "back" });
    await waitFor(async () => (await serving()) === metas[0].version, "and back");
    // The switch is over once it is logged (the old version released).
    await waitFor(
      () =>
        engine
          .logs()
          .some(
            (l) =>
              l.msg === "model activated" && l.by === "registry" && l.version === metas[0].version,
          ),
      "the switch back logged",
    );
    // The engine recorded nothing of its own: the two moves are the only new records.
    assert.equal((await registry.activations("boiler")).length, records + 2);
    assert.ok(engine.logs().some((l) => l.msg === "model activated" && l.by === "registry"));
    // A pointer it cannot follow (other sensors) is shown beside the version still scoring.
    const listed = async () => {
      const res = await fetch(url("/models"), {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const body = (await res.json()) as {
        models: { active_version: string; registry_pointer?: Record<string, string> }[];
      };
      return body.models[0];
    };
    assert.equal((await listed()).registry_pointer, undefined, "none while the pointer is served");
    await registry.activate("boiler", metas[2].version, { by: "Ana", reason: "wrong one" });
    const refused = await waitFor(async () => {
      const m = await listed();
      return m.registry_pointer?.following === "refused" ? m : undefined;
    }, "the refusal shown");
    assert.equal(refused.active_version, metas[0].version);
    assert.equal(refused.registry_pointer?.version, metas[2].version);
    assert.match(refused.registry_pointer?.error ?? "", /features/);
    await registry.activate("boiler", metas[0].version, { by: "Ana", reason: "undo" });
    await waitFor(
      async () => (await listed()).registry_pointer === undefined,
      "the note gone once the pointer names the served version",
    );
  });

  test("refuses what it cannot do and changes nothing", async () => {
    assert.equal(
      (await activate({ version: metas[1].version }, "wrong-token-0123456789")).status,
      401,
    );
    const notFound = await activate({ version: "9.9.9" });
    assert.equal(notFound.status, 404);
    assert.equal(((await notFound.json()) as { error: string }).error, "version_not_found");
    const unsafe = await activate({ version: "../../etc" });
    assert.equal(unsafe.status, 400);
    assert.equal(((await unsafe.json()) as { error: string }).error, "invalid_request");
    assert.equal((await activate("{not json")).status, 400);
    assert.equal((await activate({ version: metas[1].version, extra: 1 })).status, 400);
    const huge = await activate({ version: metas[1].version, reason: "x".repeat(100_000) });
    assert.equal(huge.status, 413);
    assert.equal(((await huge.json()) as { error: string }).error, "payload_too_large");
    // The scheme's name is case-insensitive.
    const lower = await fetch(url("/models"), {
      headers: { authorization: `bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(lower.status, 200);
    // Zeroing the counters is the operators' too.
    assert.equal((await fetch(url("/stats/reset"), { method: "POST" })).status, 401);
    const reset = await fetch(url("/stats/reset"), {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(reset.status, 200);
    const other = await fetch(url("/models/pump/activate"), {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ version: "1" }),
    });
    assert.equal(other.status, 404);
    // Other sensors: refused unless the windows may start afresh.
    const incompatible = await activate({ version: metas[2].version });
    assert.equal(incompatible.status, 409);
    assert.equal(((await incompatible.json()) as { error: string }).error, "model_incompatible");
    const ready = (await (await fetch(url("/health/ready"))).json()) as {
      model: { version: string };
    };
    assert.equal(ready.model.version, metas[0].version, "still the version it had");
  });

  test("activating the version already active answers unchanged, loads nothing and records nothing", async () => {
    const registry = new ModelRegistry(reg.dir);
    const records = await registry.activations("boiler");
    const switches = engine.logs().filter((l) => l.msg === "model activated").length;
    const answer = await activate({ version: metas[0].version, by: "Ana", reason: "again" });
    assert.equal(answer.status, 200);
    const body = (await answer.json()) as Record<string, unknown>;
    assert.equal(body.unchanged, true);
    assert.deepEqual(
      [body.version, body.from, body.windows_reset],
      [metas[0].version, metas[0].version, false],
    );
    // The record that made it active, not a new one.
    assert.deepEqual(
      body.activation,
      records.findLast((a) => a.version === metas[0].version),
    );
    assert.deepEqual(await registry.activations("boiler"), records, "no from == to record");
    assert.equal(
      engine.logs().filter((l) => l.msg === "model activated").length,
      switches,
      "no reload",
    );
  });

  test("lists the versions whose sensors differ from the active one's, and the streams under both names", async () => {
    const res = await fetch(url("/models"), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const [listed] = ((await res.json()) as { models: Record<string, unknown>[] }).models;
    assert.equal(listed.active_version, metas[0].version);
    assert.deepEqual(listed.incompatible_versions, [metas[2].version]);
    assert.equal(listed.streams, listed.live_streams);
    assert.equal(listed.registry_error, undefined);
  });

  test("reset_windows switches to other sensors: old frames refused, new ones scored afresh", async () => {
    const answer = await activate({ version: metas[2].version, reset_windows: true });
    assert.equal(answer.status, 200);
    const body = (await answer.json()) as { windows_reset: boolean; streams: number };
    assert.equal(body.windows_reset, true);
    assert.ok(body.streams >= STREAMS.length);
    const old = await send("boiler-1", 500);
    assert.equal(old.status, 422, "a frame with the old sensors no longer fits");
    const W = metas[2].window_size;
    const before = scored().size;
    for (let i = 0; i < W; i++)
      assert.equal((await send("boiler-1", 600 + i, fixtures[2])).status, 202);
    // The stream's window started afresh: W frames make one window.
    await waitFor(() => scored().size === before + 1, "one new window");
  });

  test("an incident opened under one version goes on and resolves under the next, with one id", async () => {
    // A second engine, on its own registry of the two compatible versions, in incident mode.
    const own = await mkdtemp(join(tmpdir(), "activation-incident-"));
    const registry = new ModelRegistry(own);
    for (const [i, f] of fixtures.slice(0, 2).entries()) {
      await registry.write(await readFile(join(f.dir, "boiler.onnx")), metas[i]);
    }
    const second = await startRegistryEngine({ dir: own, models: fixtures }, reg.sink, {
      ALERT_MODE: "incident",
      LOG_LEVEL: "info",
      INCIDENT_CONFIRM_K: "2",
      INCIDENT_CONFIRM_N: "3",
      INCIDENT_QUIET_WINDOWS: "3",
      INCIDENT_UPDATE_MIN_MS: "0",
    }).catch(async (error) => {
      await rm(own, { recursive: true, force: true });
      throw error;
    });
    try {
      const f = fixtures[0];
      const frame = (i: number, spiked: boolean) =>
        fetch(second.url("/data-enqueue"), {
          method: "POST",
          body: jsonFrame(f.featureNames, spiked ? f.spikedFrame(i, 3) : f.normalFrame(i), {
            stream_id: "line-x",
            timestamp: BASE_TS + i * 1000,
          }),
        });
      type Sent = {
        stream_id: string;
        event?: string;
        incident_id?: string;
        model_version: string;
      };
      const events = () =>
        reg.sink.requests
          .map((r) => JSON.parse(r.body) as Sent)
          .filter((a) => a.stream_id === "line-x");
      let i = 0;
      for (; i < 5; i++) assert.equal((await frame(i, false)).status, 202);
      for (; i < 8; i++) assert.equal((await frame(i, true)).status, 202);
      const opened = await waitFor(() => events().find((e) => e.event === "opened"), "opened");
      assert.equal(opened.model_version, metas[0].version);
      const answer = await fetch(second.url("/models/boiler/activate"), {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ version: metas[1].version }),
      });
      assert.equal(answer.status, 200);
      for (; i < 10; i++) assert.equal((await frame(i, true)).status, 202);
      for (; i < 22; i++) assert.equal((await frame(i, false)).status, 202);
      const resolved = await waitFor(
        () => events().find((e) => e.event === "resolved"),
        "resolved",
      );
      assert.equal(resolved.incident_id, opened.incident_id, "the same incident");
      assert.equal(resolved.model_version, metas[1].version, "resolved by the new version");
      assert.equal(new Set(events().map((e) => e.incident_id)).size, 1, "no second incident");
    } finally {
      await second.engine.kill();
      await rm(own, { recursive: true, force: true });
    }
  });
});
