// The Now and Health pages against a real engine: a stream that stopped sending is listed as silent, not as running.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jsonFrame } from "../../engine/_test/engine_harness.ts";
import { trainedRegistry } from "../../engine/_test/registry_engine.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { freePort } from "../_test/free_port.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const text = (html: string) => html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");

describe("the console with a stream gone silent", () => {
  const reg = trainedRegistry([{ features: 8, name: "kiln", frames: 300 }]);
  let db: TestDatabase;
  let app: ReturnType<typeof createBackendApp>;
  let url: (path: string) => string;

  before(async () => {
    // The shortest stale limit the engine takes: a second.
    ({ url } = await reg.start({ INCIDENT_STALE_MS: "1000" }));
    db = await testTargets()[0].open();
    app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: url(""), timeoutMs: 5000 }),
    });
  });
  after(() => db?.dispose());

  test("a stream that sends nothing past INCIDENT_STALE_MS is listed as silent on Now and Health, and goes once it sends again", async () => {
    const [kiln] = reg.models;
    const send = async (stream: string, i: number) => {
      const res = await fetch(url("/data-enqueue"), {
        method: "POST",
        body: jsonFrame(kiln.featureNames, kiln.normalFrame(i), { stream_id: stream }),
      });
      assert.equal(res.status, 202, await res.text());
    };
    const stream = "line-dark";
    for (let i = 0; i < 3; i++) await send(stream, i);
    const now = await waitFor(async () => {
      const page = await (await app.request("/")).text();
      return page.includes('id="silent-streams"') ? page : undefined;
    }, "the stream listed as silent on Now");
    const summary = /<p id="silent-summary">([\s\S]*?)<\/p>/.exec(now);
    assert.ok(summary);
    assert.match(
      text(summary[1]),
      /^1 stream has had no frame accepted for longer than the engine&#39;s stale limit/,
    );
    assert.match(
      text(now),
      /No machine is stopped by its running condition; the silent streams below have had no frame accepted\./,
    );
    assert.match(text(now), /line-dark \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
    const health = await (await app.request("/status")).text();
    assert.ok(health.includes('id="silent-streams"'), "Health lists it too");

    // It sends again: not silent any more.
    await send(stream, 3);
    const after = await (await app.request("/")).text();
    assert.ok(!after.includes('id="silent-streams"'), "gone once it sends");
    assert.match(text(after), /Every machine the engine scores is running\./);
  });

  test("Retire moves a silent stream under Retired streams with who, when and why (escaped), and Watch again puts it back", async () => {
    const [kiln] = reg.models;
    const stream = "line-gone";
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url("/data-enqueue"), {
        method: "POST",
        body: jsonFrame(kiln.featureNames, kiln.normalFrame(i), { stream_id: stream }),
      });
      assert.equal(res.status, 202, await res.text());
    }
    const listed = await waitFor(async () => {
      const page = await (await app.request("/status")).text();
      return page.includes(`action="/streams/${stream}/retire"`) ? page : undefined;
    }, "the stream listed silent with its Retire form");
    // Each row's controls are named after their stream (the words on screen come first).
    assert.match(
      listed,
      new RegExp(
        `<label for="retire-\\d+-reason">Why<span class="vh"> \\(retire ${stream}\\)</span></label>`,
      ),
    );
    assert.ok(
      listed.includes(`<button type="submit" aria-label="Retire: ${stream}">Retire</button>`),
    );
    const form = (path: string, fields: Record<string, string>) =>
      app.request(path, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          referer: "http://x/status",
        },
        body: new URLSearchParams(fields).toString(),
      });
    const refused = await form(`/streams/${stream}/retire`, { reason: " ", by: "Ana" });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /invalid_request/);
    const hostile = `<script>alert("x")</script> 'line' removed`;
    const done = await form(`/streams/${stream}/retire`, { reason: hostile, by: "Ana" });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/status#retired-heading");
    const page = await (await app.request("/status")).text();
    const retired = /<table id="retired-streams"[\s\S]*?<\/table>/.exec(page)?.[0] ?? "";
    assert.ok(retired.includes(`<td>${stream}</td>`), "listed under Retired streams");
    assert.ok(!page.includes("<script>alert"), "the reason is escaped");
    assert.ok(
      retired.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#39;line&#39; removed"),
    );
    assert.ok(retired.includes("<td>Ana</td>"));
    assert.ok(
      !page.includes(`action="/streams/${stream}/retire"`),
      "no longer among Streams silent",
    );
    const twice = await form(`/streams/${stream}/retire`, { reason: "again", by: "Ana" });
    assert.equal(twice.status, 409);
    assert.match(await twice.text(), /already_retired/);

    const back = await form(`/streams/${stream}/watch`, { reason: "line back", by: "Ben" });
    assert.equal(back.status, 303);
    const after = await (await app.request("/status")).text();
    assert.ok(after.includes(`action="/streams/${stream}/retire"`), "silent again, watched");
    assert.ok(!after.includes('id="retired-streams"'));
  });

  test("Retired streams and their Watch again forms stay on Now and Health while the engine is out of reach", async () => {
    // Retirements come from the database: a port nothing listens on stands for an engine down.
    const gone = createBackendApp({
      database: db,
      engine: createEngineMonitor({
        engineUrl: `http://127.0.0.1:${await freePort()}`,
        timeoutMs: 500,
      }),
    });
    const stream = "line-unheard";
    const form = (path: string, from: string, fields: Record<string, string>) =>
      gone.request(path, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          referer: `http://x${from}`,
        },
        body: new URLSearchParams(fields).toString(),
      });
    const done = await form(`/streams/${stream}/retire`, "/", {
      reason: "line removed",
      by: "Ana",
    });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/#retired-heading");
    for (const path of ["/", "/status"]) {
      const page = await (await gone.request(path)).text();
      assert.match(text(page), /unreachable/i, `${path}: the engine is out of reach`);
      const retired = /<table id="retired-streams"[\s\S]*?<\/table>/.exec(page)?.[0] ?? "";
      assert.ok(retired.includes(`<td>${stream}</td>`), `${path}: listed under Retired streams`);
      assert.ok(retired.includes("<td>Ana</td>") && retired.includes("<td>line removed</td>"));
      assert.ok(retired.includes(`action="/streams/${stream}/watch"`), `${path}: Watch again form`);
      assert.match(page, /<h2 id="retired-heading">Retired streams<\/h2>/);
    }
    const back = await form(`/streams/${stream}/watch`, "/status", { reason: "back", by: "Ben" });
    assert.equal(back.status, 303);
    const after = await (await gone.request("/status")).text();
    assert.ok(!after.includes('id="retired-streams"'), "watched again: no longer retired");
  });
});
