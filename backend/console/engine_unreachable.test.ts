// The Now page when the engine is down or hung: it says so at once, with the last stopped machines.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const HOSTILE = '<script>alert("x")</script>';
const SINCE = "2026-12-01T08:00:00.000Z";

/** A real HTTP engine answering `GET /stats` (and readiness), hung on demand. */
async function startEngine() {
  const state = { hung: false, stats: 0 };
  const server: Server = createServer((req, res) => {
    if (req.url === "/stats") state.stats++;
    if (state.hung) return; // never answers
    if (req.url === "/stats") {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          frames: { accepted: 1, rejected: 0, scored: 1 },
          queue: { depth: 0, capacity: 10 },
          latency_ms: { count: 1, p50: 1, p99: 1 },
          machine_off: [
            { stream_id: HOSTILE, since: SINCE },
            {
              stream_id: "press-7",
              since: SINCE,
              reads_running: { since: SINCE, sensor: HOSTILE, in_range: 0.974 },
            },
          ],
        }),
      );
      return;
    }
    res.statusCode = 404;
    res.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url, state, close };
}

const text = (html: string) => html.replace(/<[^>]+>/g, "").replace(/\s+/g, " ");

describe("the Now page with the engine unreachable", () => {
  let db: TestDatabase;
  before(async () => {
    db = await testTargets()[0].open();
  });
  after(() => db.dispose());

  test("the Now page says the engine is unreachable, why and since when, with the last known stopped machines", async () => {
    const engine = await startEngine();
    let clock = Date.parse("2026-12-06T10:00:00Z");
    try {
      const app = createBackendApp({
        database: db,
        engine: createEngineMonitor({
          engineUrl: engine.url,
          timeoutMs: 2000,
          nowTimeoutMs: 300,
          now: () => clock,
        }),
      });
      let page = await (await app.request("/")).text();
      assert.ok(!page.includes("engine-unreachable"), "reachable: nothing to say");
      assert.match(page, /<h2 id="machine-off-heading">Machines stopped<\/h2>/);

      engine.state.hung = true;
      clock += 60_000;
      const res = await app.request("/");
      assert.equal(res.status, 200);
      page = await res.text();
      const note = /<p id="engine-unreachable"[^>]*>([\s\S]*?)<\/p>/.exec(page);
      assert.ok(note, "the page says the engine cannot be reached");
      assert.equal(
        text(note[1]),
        "Engine unreachable (no answer within 300 ms) since 2026-12-06 10:01:00Z — frames are not being scored; see Health.",
      );
      assert.match(note[1], /<a href="\/status">Health<\/a>/);
      assert.ok(
        page.indexOf('id="engine-unreachable"') < page.indexOf('id="open-heading"'),
        "said before the lists",
      );
      // The stopped machines of the last answer, labelled as such, the stream id escaped.
      assert.match(page, /Machines stopped \(last known\)/);
      assert.match(page, /data-last-known="2026-12-06T10:00:00.000Z"/);
      assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
      assert.ok(!page.includes(HOSTILE));
      // A stop in doubt is called out, its sensor's name escaped too.
      const doubt = /<p id="machine-off-doubt">([\s\S]*?)<\/p>/.exec(page);
      assert.ok(doubt, "the doubt called out");
      assert.match(text(doubt[1]), /^1 stopped machine reads as running: /);
      assert.match(
        text(page),
        /press-72026-12-01 08:00:00ZReads as running since 2026-12-01 08:00:00Z \(97 % of its sensors in their running range\): check its running sensor &lt;script&gt;/,
      );

      // A load soon after does not wait on the hung engine again: it is not even asked.
      const asked = engine.state.stats;
      clock += 1000;
      page = await (await app.request("/")).text();
      assert.equal(engine.state.stats, asked, "no new read within the recheck interval");
      assert.match(
        text(page),
        /Engine unreachable \(no answer within 300 ms\) since 2026-12-06 10:01:00Z/,
      );

      // Later it asks again; the engine gone altogether reads so, "since" unchanged.
      await engine.close();
      clock += 5000;
      const note2 = /<p id="engine-unreachable"[^>]*>([\s\S]*?)<\/p>/.exec(
        await (await app.request("/")).text(),
      );
      assert.ok(note2);
      assert.match(text(note2[1]), /^Engine unreachable \(.+\) since 2026-12-06 10:01:00Z — /);
      assert.ok(!note2[1].includes("no answer within"), "the new reason, not the old one");
    } finally {
      await engine.close().catch(() => {});
    }
  });

  test("the Now page of an engine never reached says so without a stopped-machines section", async () => {
    // A port that was just listened on and closed: nothing answers there.
    const gone = await startEngine();
    await gone.close();
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: gone.url, timeoutMs: 500 }),
    });
    const page = await (await app.request("/")).text();
    assert.match(text(page), /Engine unreachable \(connection refused \(ECONNREFUSED\)\) since /);
    assert.ok(!page.includes("machine-off-heading"));
  });
});

test("the Health page shows why the engine's readiness failed, escaped", async () => {
  const db = await testTargets()[0].open();
  const server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/health/ready") {
      res.statusCode = 503;
      res.end(
        JSON.stringify({
          status: "failed",
          model: null,
          execution_provider: null,
          gpu: { available: false },
          error: `model file unreadable ${HOSTILE}`,
        }),
      );
      return;
    }
    res.statusCode = 404;
    res.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({
        engineUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        timeoutMs: 2000,
      }),
    });
    const page = await (await app.request("/status")).text();
    const ready = /<dd data-ready="failed">([\s\S]*?)<\/dd>/.exec(page);
    assert.ok(ready, page.slice(page.indexOf("Readiness"), page.indexOf("Readiness") + 300));
    assert.match(
      ready[1],
      /^failed: model file unreadable &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/,
    );
    assert.ok(!page.includes(HOSTILE));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await db.dispose();
  }
});
