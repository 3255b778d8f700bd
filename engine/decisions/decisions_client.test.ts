import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startBackend } from "../../backend/_test/backend_process.ts";
import { type ServiceProcess, waitFor } from "../../backend/_test/spawn_service.ts";
import { DecisionsClient } from "./decisions_client.ts";

const HOUR = 3_600_000;

/** A JSON POST/DELETE to the backend; rejects unless it answers `expect`. */
async function call(url: string, method: string, body: unknown, expect: number) {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, expect, await res.clone().text());
  return res.json();
}

describe("decisions client against a real backend process", () => {
  let backend: ServiceProcess;
  let base: string;
  let dir: string;
  let client: DecisionsClient | undefined;
  // Every answer the client got, by path: to see the conditional pulls.
  const answers: { path: string; status: number }[] = [];
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    answers.push({ path: new URL(String(input)).pathname, status: res.status });
    return res;
  };
  const silences: Record<string, string> = {};
  const incidents: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "decisions-"));
    ({ service: backend, base } = await startBackend());
    const now = Date.now();
    const silence = async (matchers: unknown) =>
      (
        await call(
          `${base}/api/v1/silences`,
          "POST",
          {
            matchers,
            ends_at: new Date(now + 2 * HOUR).toISOString(),
            reason: "bearing swap <b>",
            created_by: "Ana",
          },
          201,
        )
      ).silence.silence_id;
    silences.sensors = await silence({ stream: "line-1*", sensors: ["feature_42*"] });
    silences.kiln = await silence({ stream: "kiln" });
    for (const [name, verdict] of [
      ["false", "false_positive"],
      ["true", "true_positive"],
    ]) {
      const id = crypto.randomUUID();
      const at = new Date(now - HOUR).toISOString();
      await call(
        `${base}/api/v1/alert`,
        "POST",
        {
          alert_id: crypto.randomUUID(),
          timestamp: at,
          frame_timestamp: at,
          anomaly_detected: true,
          num_anomalous_features: 1,
          anomalous_features: [{ feature_idx: 3, score: 0.99, feature: "feature_3" }],
          stream_id: "line-2",
          incident_id: id,
          event: "opened",
          incident_started_at: at,
        },
        201,
      );
      await call(`${base}/api/v1/incidents/${id}/verdict`, "POST", { verdict, by: "Ana" }, 201);
      incidents[name] = id;
    }
  });

  after(async () => {
    await client?.stop();
    await backend?.stop("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  test("the client mirrors silences and verdicts and then pulls with If-None-Match", async () => {
    client = new DecisionsClient({ baseUrl: base, dir, pollMs: 200, fetch: recording });
    await client.start();
    const c = client;
    const now = () => new Date();
    await waitFor(
      async () => c.silencedAt("line-1.a", "feature_4242", now()) ?? undefined,
      "the silence to arrive",
      30_000,
    );
    assert.equal(c.silencedAt("line-1.a", "feature_4242", now()), silences.sensors);
    assert.equal(c.silencedAt("line-1.a", "feature_17", now()), undefined, "another sensor");
    assert.equal(c.silencedAt("line-1.a", undefined, now()), undefined, "not the whole stream");
    assert.equal(c.silencedAt("kiln", undefined, now()), silences.kiln);
    assert.equal(c.silencedAt("kiln", "anything", now()), silences.kiln);
    assert.equal(c.silencedAt("kiln", "x", new Date(Date.now() + 3 * HOUR)), undefined, "after");
    const names = ["feature_17", "feature_4242"];
    assert.equal(c.silencedAtAny("line-1.a", names, now()), silences.sensors, "one of them");
    assert.equal(c.silencedAtAny("line-1.a", ["feature_17"], now()), undefined);
    assert.equal(c.silencedAtAny("kiln", ["feature_17"], now()), silences.kiln, "whole stream");
    await waitFor(async () => c.verdictOf(incidents.false), "the verdicts to arrive", 30_000);
    assert.equal(c.verdictOf(incidents.false), "false_positive");
    assert.equal(c.verdictOf(incidents.true.toUpperCase()), "true_positive");
    assert.equal(c.verdictOf(crypto.randomUUID()), undefined);

    // Later rounds are answered 304: nothing changed.
    await waitFor(
      async () =>
        answers.some((a) => a.path === "/api/v1/silences/effective" && a.status === 304) &&
        answers.some((a) => a.path === "/api/v1/verdicts" && a.status === 304)
          ? true
          : undefined,
      "a 304 for each resource",
      30_000,
    );
    const firstSilences = answers.find((a) => a.path === "/api/v1/silences/effective");
    assert.equal(firstSilences?.status, 200);

    // Expiring a silence in the backend reaches the engine on the next pull.
    await call(`${base}/api/v1/silences/${silences.kiln}?by=Ben`, "DELETE", undefined, 200);
    await waitFor(
      async () => (c.silencedAt("kiln", undefined, now()) === undefined ? true : undefined),
      "the expiry to arrive",
      30_000,
    );
    assert.equal(c.silencedAt("line-1.a", "feature_4242", now()), silences.sensors);
  });

  test("a backend outage changes nothing, also for a client started again from its disk copy", async () => {
    const c = client!;
    assert.equal(await backend.stop("SIGKILL"), null);
    await waitFor(
      async () => (c.status().silences.last === "failed" ? true : undefined),
      "a failed pull",
      30_000,
    );
    assert.equal(c.silencedAt("line-1.a", "feature_4242", new Date()), silences.sensors);
    assert.equal(c.verdictOf(incidents.false), "false_positive");
    await c.stop();

    // The engine restarted while the backend is still down: the copy on disk answers.
    client = new DecisionsClient({ baseUrl: base, dir, pollMs: 200, timeoutMs: 2000 });
    await client.start();
    assert.equal(client.silencedAt("line-1.a", "feature_4242", new Date()), silences.sensors);
    assert.equal(client.silencedAt("kiln", undefined, new Date()), undefined, "the expiry too");
    assert.equal(client.verdictOf(incidents.false), "false_positive");
    assert.deepEqual(await client.pullNow(), { silences: "failed", verdicts: "failed" });
    assert.equal(client.silencedAt("line-1.a", "feature_4242", new Date()), silences.sensors);
    assert.equal(client.status().silences.held, true);
    assert.match(client.status().silences.last_error ?? "", /silences\/effective/);
    await client.stop();
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ["silences.json", "verdicts.json"],
      "no tmp left",
    );
  });
});

describe("decisions client against answers off the contract", () => {
  let server: Server;
  let base: string;
  let body = "{}";
  let status = 200;

  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(status, { "content-type": "application/json", etag: '"v1"' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a corrupt copy is ignored, and an off-contract or failing answer keeps the last good one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "decisions-bad-"));
    try {
      await writeFile(join(dir, "silences.json"), "{not json");
      // Not a file at all: said too, and no reason not to start.
      await mkdir(join(dir, "verdicts.json"));
      const warned: { message: string; fields?: Record<string, unknown> }[] = [];
      const log = {
        info() {},
        warn(message: string, fields?: Record<string, unknown>) {
          warned.push({ message, fields });
        },
      };
      const client = new DecisionsClient({ baseUrl: base, dir, pollMs: 60_000, log });
      await client.start();
      assert.equal(client.status().silences.held, false);
      assert.equal(client.status().verdicts.held, false);
      const unusable = warned.filter((w) =>
        w.message.startsWith("a decisions copy on disk is unusable"),
      );
      assert.equal(unusable.length, 2);
      assert.match(String(unusable[0].fields?.problem), /silences\.json is not JSON/);
      assert.match(String(unusable[1].fields?.problem), /verdicts\.json cannot be read/);
      await client.stop();
      await rm(join(dir, "verdicts.json"), { recursive: true });

      const good = {
        as_of: new Date().toISOString(),
        silences: [
          {
            silence_id: crypto.randomUUID(),
            matchers: { stream: "s", sensors: [] },
            starts_at: new Date(Date.now() - HOUR).toISOString(),
            ends_at: new Date(Date.now() + HOUR).toISOString(),
            recurrence: null,
            reason: "r",
            created_by: "b",
            created_at: new Date().toISOString(),
            expired_at: null,
            expired_by: null,
            expired_reason: null,
            state: "active",
          },
        ],
      };
      const fresh = new DecisionsClient({ baseUrl: base, dir, pollMs: 60_000 });
      body = JSON.stringify(good);
      assert.equal((await fresh.pullNow()).silences, "updated");
      assert.equal(fresh.silencedAt("s", undefined, new Date()), good.silences[0].silence_id);
      body = JSON.stringify({ as_of: "yesterday", silences: "none" });
      assert.equal((await fresh.pullNow()).silences, "failed");
      assert.match(fresh.status().silences.last_error ?? "", /off contract at as_of/);
      status = 500;
      assert.equal((await fresh.pullNow()).silences, "failed");
      assert.equal(fresh.silencedAt("s", undefined, new Date()), good.silences[0].silence_id);
      await fresh.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("decisions client on a disk that cannot take its copy", () => {
  let server: Server;
  let base: string;
  let verdicts: { incident_id: string; stream_id: string; verdict: string; at: string }[] = [];
  let etag = 1;
  let status = 200;
  // The If-None-Match of each verdicts pull, in order.
  const conditions: (string | undefined)[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const tag = `"${etag}"`;
      const feed = req.url === "/api/v1/verdicts";
      if (feed) conditions.push(req.headers["if-none-match"]);
      if (status !== 200 && feed) {
        res.writeHead(status).end();
      } else if (req.headers["if-none-match"] === tag) {
        res.writeHead(304, { etag: tag }).end();
      } else {
        const as_of = new Date().toISOString();
        res.writeHead(200, { "content-type": "application/json", etag: tag });
        res.end(JSON.stringify(feed ? { as_of, verdicts } : { as_of, silences: [] }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a verdict is used while its copy cannot be saved, and saved at a later pull", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "decisions-unsaved-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const said: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
    const log = {
      info: (message: string, fields?: Record<string, unknown>) =>
        void said.push({ level: "info", message, fields }),
      warn: (message: string, fields?: Record<string, unknown>) =>
        void said.push({ level: "warn", message, fields }),
    };
    const verdict = (n: number, v: string) => ({
      incident_id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
      stream_id: "s",
      verdict: v,
      at: new Date().toISOString(),
    });
    verdicts = [verdict(1, "true_positive")];
    const client = new DecisionsClient({ baseUrl: base, dir, pollMs: 60_000, log });
    t.after(() => client.stop());
    assert.equal((await client.pullNow()).verdicts, "updated");

    // The copy's place is taken by a folder: every save fails (EISDIR), as on a full disk.
    const copy = join(dir, "verdicts.json");
    await rm(copy);
    await mkdir(copy);
    await writeFile(join(copy, "in-the-way"), "");
    verdicts = [...verdicts, verdict(2, "false_positive")];
    etag = 2;
    assert.equal((await client.pullNow()).verdicts, "updated");
    assert.equal(client.verdictOf(verdict(2, "").incident_id), "false_positive", "used at once");
    assert.match(client.status().verdicts.unsaved ?? "", /verdicts\.json cannot be saved/);
    assert.equal((await client.pullNow()).verdicts, "updated", "no 304 for an unsaved copy");
    assert.deepEqual(conditions, [undefined, '"1"', undefined]);
    const warned = said.filter((s) => s.level === "warn");
    assert.equal(warned.length, 1, "warned once, not at every pull");
    assert.equal(warned[0].fields?.resource, "verdicts");

    // The disk takes it again: the next pull saves the copy in use, even with the backend down.
    await rm(copy, { recursive: true });
    status = 503;
    assert.equal((await client.pullNow()).verdicts, "failed");
    assert.equal(client.status().verdicts.unsaved, null);
    assert.ok(said.some((s) => s.message === "decisions copy saved again"));
    status = 200;
    assert.equal((await client.pullNow()).verdicts, "unchanged");
    assert.equal(conditions.at(-1), '"2"', "If-None-Match once saved");
    const stored = JSON.parse(await readFile(copy, "utf8"));
    assert.deepEqual(stored.body.verdicts, verdicts, "what a restart finds");
  });
});

describe("decisions client report", () => {
  let server: Server;
  let base: string;
  let status = 200;

  before(async () => {
    server = createServer((req, res) => {
      const tag = '"r1"';
      if (status !== 200) {
        res.writeHead(status).end();
        return;
      }
      if (req.headers["if-none-match"] === tag) {
        res.writeHead(304, { etag: tag }).end();
        return;
      }
      const as_of = new Date().toISOString();
      const verdict = (n: number) => ({
        incident_id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
        stream_id: "s",
        verdict: "true_positive",
        at: as_of,
      });
      const silence = {
        silence_id: crypto.randomUUID(),
        matchers: { stream: "s", sensors: [] },
        starts_at: new Date(Date.now() - HOUR).toISOString(),
        ends_at: new Date(Date.now() + HOUR).toISOString(),
        recurrence: null,
        reason: "r",
        created_by: "b",
        created_at: as_of,
        expired_at: null,
        expired_by: null,
        expired_reason: null,
        state: "active",
      };
      res.writeHead(200, { "content-type": "application/json", etag: tag });
      res.end(
        JSON.stringify(
          req.url === "/api/v1/verdicts"
            ? { as_of, verdicts: [verdict(1), verdict(2)] }
            : { as_of, silences: [silence] },
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("decisionsClient report says a copy never pulled is stale, counts a held one, and ages it from its last confirmation", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "decisions-report-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    status = 503;
    const client = new DecisionsClient({ baseUrl: base, dir, pollMs: 1000 });
    await client.pullNow();
    const none = client.report();
    assert.equal(none.stale, true);
    assert.equal(none.stale_after_s, 60, "three poll intervals, at least a minute");
    assert.match(none.why ?? "", /silences: no copy held/);
    assert.match(none.why ?? "", /verdicts: no copy held/);
    for (const r of [none.silences, none.verdicts]) {
      assert.deepEqual([r.held, r.fetched_at, r.age_s, r.last], [null, null, null, "failed"]);
      assert.match(r.last_error ?? "", /answered 503/);
    }

    status = 200;
    assert.deepEqual(await client.pullNow(), { silences: "updated", verdicts: "updated" });
    const fetchedAt = Date.parse(client.status().silences.fetched_at ?? "");
    const held = client.report(fetchedAt + 30_000);
    assert.equal(held.stale, false);
    assert.equal(held.why, null);
    assert.deepEqual([held.silences.held, held.verdicts.held], [1, 2]);
    assert.equal(held.silences.age_s, 30);
    assert.equal(held.silences.last, "updated");
    const late = client.report(fetchedAt + 61_000);
    assert.equal(late.stale, true);
    assert.match(late.why ?? "", /silences: not known current for 61 s/);

    // A 304 confirms the copy: its age counts from then, its fetch time stays.
    assert.deepEqual(await client.pullNow(), { silences: "unchanged", verdicts: "unchanged" });
    const checkedAt = Date.parse(client.status().silences.checked_at ?? "");
    assert.ok(checkedAt >= fetchedAt);
    const confirmed = client.report(checkedAt);
    assert.equal(confirmed.silences.age_s, 0);
    assert.equal(Date.parse(confirmed.silences.fetched_at ?? ""), fetchedAt);

    // After a restart with the backend down: the copy from disk is held, aged from its fetch.
    status = 503;
    const restarted = new DecisionsClient({ baseUrl: base, dir, pollMs: 1000 });
    await restarted.start();
    await restarted.stop();
    const fromDisk = restarted.report(fetchedAt + 61_000);
    assert.deepEqual([fromDisk.silences.held, fromDisk.verdicts.held], [1, 2]);
    assert.equal(fromDisk.stale, true);
    assert.match(fromDisk.why ?? "", /not known current/);

    // A copy fetched ten minutes ago and confirmed by a 304 now: after a restart with the backend
    // down, it is aged from that confirmation (written into the copy), its fetch time kept.
    const oldFetch = new Date(Date.now() - 10 * 60_000).toISOString();
    for (const name of ["silences", "verdicts"]) {
      const path = join(dir, `${name}.json`);
      const stored = JSON.parse(await readFile(path, "utf8"));
      await writeFile(path, JSON.stringify({ ...stored, fetched_at: oldFetch }));
    }
    status = 200;
    const confirming = new DecisionsClient({ baseUrl: base, dir, pollMs: 1000 });
    await confirming.start();
    await confirming.pullNow();
    await confirming.stop();
    assert.equal(
      confirming.status().silences.last,
      "unchanged",
      confirming.status().silences.last_error ?? "",
    );
    const confirmedAt = Date.parse(confirming.status().silences.checked_at ?? "");
    status = 503;
    const again = new DecisionsClient({ baseUrl: base, dir, pollMs: 1000 });
    await again.start();
    await again.stop();
    const afterRestart = again.report(confirmedAt + 5_000);
    assert.equal(afterRestart.stale, false, afterRestart.why ?? "");
    assert.deepEqual([afterRestart.silences.age_s, afterRestart.verdicts.age_s], [5, 5]);
    assert.equal(afterRestart.silences.fetched_at, oldFetch);
  });
});
