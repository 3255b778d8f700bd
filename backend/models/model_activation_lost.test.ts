// Model activation through the backend when the engine's answer is lost (a cut connection, a timeout): a real engine process behind a real HTTP relay that loses it; the switch is read back from GET /models.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { ADMIN_TOKEN, trainedRegistry } from "../../engine/_test/registry_engine.ts";
import { tokenAuth } from "../_test/token_auth.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { createAuditRepository } from "../audit/audit_repository.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createModelActivator } from "./model_activation.ts";

const ALICE = { role: "admin" as const, token: "alice-token-0123456789" };
const bearer = { authorization: `Bearer ${ALICE.token}` };

/**
 * What the relay does with an activation: `pass` it on; `cut` the connection once the engine
 * answered; `hold` the engine's answer (never sent on); `swallow` it (never sent to the engine,
 * the connection cut). Other requests wait until the engine answered the last activation sent.
 */
type Loss = "pass" | "cut" | "hold" | "swallow";

/** A real HTTP relay in front of the engine at `target` that loses activation answers as told. */
async function startRelay(target: string) {
  let loss: Loss = "pass";
  let engineAnswered = Promise.resolve();
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const activation = req.method === "POST" && (req.url ?? "").endsWith("/activate");
    if (activation && loss === "swallow") {
      req.socket.destroy();
      return;
    }
    if (!activation) await engineAnswered;
    let answered = () => {};
    if (activation) {
      engineAnswered = new Promise((resolve) => {
        answered = resolve;
      });
    }
    const answer = await fetch(new URL(req.url ?? "/", target), {
      method: req.method,
      headers: {
        authorization: req.headers.authorization ?? "",
        "content-type": req.headers["content-type"] ?? "application/json",
      },
      body: req.method === "GET" ? undefined : Buffer.concat(chunks),
    });
    const text = await answer.text();
    answered();
    if (activation && loss === "cut") {
      req.socket.destroy();
      return;
    }
    if (activation && loss === "hold") return;
    res.writeHead(answer.status, { "content-type": "application/json" });
    res.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lose(how: Loss) {
      loss = how;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const target = testTargets()[0];

describe(`model activation through the backend with the engine's answer lost, on ${target.kind}`, () => {
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
  ]);
  let engineUrl: string;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let db: TestDatabase;
  let dir: string;
  let app: ReturnType<typeof createBackendApp>;

  before(async () => {
    const started = await reg.start();
    engineUrl = started.url("");
    relay = await startRelay(engineUrl);
    db = await target.open();
    dir = await mkdtemp(join(tmpdir(), "activation-lost-"));
    app = createBackendApp({
      database: db,
      auth: await tokenAuth(dir, { alice: ALICE }),
      modelActivation: { engineUrl: relay.url, adminToken: ADMIN_TOKEN },
    });
  });
  after(async () => {
    await relay?.close();
    await db?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The version the engine serves now, asked directly. */
  async function serving() {
    const res = await fetch(`${engineUrl}/models`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return ((await res.json()) as { models: { active_version: string }[] }).models[0]
      .active_version;
  }
  async function audited() {
    const res = await app.request("/api/v1/audit?action=model.activate", { headers: bearer });
    return ((await res.json()) as { events: { detail: Record<string, unknown> }[] }).events;
  }

  test("an activation whose answer is cut after the engine switched is answered and audited as done", async () => {
    const [v1, v2] = reg.metas.map((m) => m.version);
    relay.lose("cut");
    const res = await app.request(
      "/api/v1/models/kiln/activate",
      post({ version: v2, reason: "newer" }, bearer),
    );
    assert.equal(res.status, 200, await res.clone().text());
    const answer = (await res.json()) as Record<string, unknown>;
    assert.deepEqual([answer.version, answer.from, answer.windows_reset], [v2, v1, false]);
    assert.equal(await serving(), v2);
    const events = await audited();
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].detail, {
      version: v2,
      from: v1,
      reason: "newer",
      windows_reset: false,
      answer_lost: true,
    });
  });

  test("an activation whose answer does not come in time is read back from GET /models and audited", async () => {
    const [v1, v2] = reg.metas.map((m) => m.version);
    relay.lose("hold");
    const activate = createModelActivator({
      engineUrl: relay.url,
      adminToken: ADMIN_TOKEN,
      audit: createAuditRepository(db),
      now: Date.now,
      timeoutMs: 300,
    });
    const erin: Identity = { subject: "token:erin", name: "erin", role: "admin", method: "token" };
    const answer = await activate("kiln", { version: v1, reason: "slow engine" }, erin);
    assert.deepEqual([answer.version, answer.from, answer.activation.by], [v1, v2, "erin"]);
    assert.equal(await serving(), v1);
    const events = await audited();
    assert.equal(events.length, 2);
    assert.equal(events[0].detail.reason, "slow engine");
    assert.equal(events[0].detail.answer_lost, true);
  });

  test("an activation lost before the engine acted answers 504 activation_outcome_unknown, audits nothing, and the console does not say nothing changed", async () => {
    const [v1, v2] = reg.metas.map((m) => m.version);
    relay.lose("swallow");
    const activate = createModelActivator({
      engineUrl: relay.url,
      adminToken: ADMIN_TOKEN,
      audit: createAuditRepository(db),
      now: Date.now,
      readBackMs: 1000,
    });
    const erin: Identity = { subject: "token:erin", name: "erin", role: "admin", method: "token" };
    await assert.rejects(
      activate("kiln", { version: v2, reason: "lost on the way" }, erin),
      (error: unknown) => {
        assert.ok(error instanceof HttpError);
        assert.deepEqual([error.status, error.code], [504, "activation_outcome_unknown"]);
        assert.match(error.message, new RegExp(`it serves ${v1.replace(/[.+]/g, "\\$&")} \\(`));
        assert.match(error.message, /Check the Health page before activating again\.$/);
        return true;
      },
    );
    assert.equal(await serving(), v1, "nothing switched");
    assert.equal((await audited()).length, 2, "nothing audited");

    // The console's form, through the backend's own wiring (its read-back: 10 s).
    const page = await app.request("/models/kiln/activate", {
      method: "POST",
      headers: { ...bearer, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ version: v2, reason: "lost on the way" }).toString(),
    });
    const html = await page.text();
    assert.match(html, /Activation outcome unknown/);
    assert.match(html, /Check the Health page before activating again\./);
    assert.doesNotMatch(html, /Nothing changed/);
    assert.doesNotMatch(html, /Not activated/);
    assert.equal((await audited()).length, 2, "nothing audited");
  });
});
