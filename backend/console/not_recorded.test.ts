// The console's forms while the database does not answer: a page that says nothing was recorded,
// with what was typed, instead of a bare JSON error and the text lost.
import assert from "node:assert/strict";
import { test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "../incidents/_fixtures.ts";

test("a console form sent while the database is down answers 503 with the page and what was typed", async () => {
  const db = await testTargets()[0].open();
  try {
    const app = createBackendApp({ database: db });
    const id = crypto.randomUUID();
    for (const alert of lifecycle(id, new Date().toISOString())) {
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
    }
    const form = (path: string, fields: Record<string, string>) =>
      app.request(path, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "sec-fetch-site": "same-origin",
        },
        body: new URLSearchParams(fields).toString(),
      });
    const sent = [
      [`/incidents/${id}/ack`, { by: "Ana", note: "valve <3> checked by hand" }],
      [
        `/incidents/${id}/verdict`,
        { verdict: "true_positive", by: "Ana", note: "valve <3> stuck" },
      ],
      [
        "/silences",
        {
          stream: "line-1",
          ends: new Date(Date.now() + 86_400_000).toISOString().slice(0, 16),
          tz: "UTC",
          reason: "pump <swap>",
          created_by: "Ana",
        },
      ],
      [
        "/quality/mute",
        {
          stream: "line-1",
          sensor: "feature_1",
          duration: "8h",
          reason: "noisy <probe>",
          by: "Ana",
        },
      ],
    ] as const;
    for (const [path, fields] of sent) {
      // Down for this request (a failed one makes the app ask for a fresh client).
      await db.sql.end({ timeout: 1 });
      const res = await form(path, fields);
      assert.equal(res.status, 503, path);
      assert.match(res.headers.get("content-type") ?? "", /text\/html/, path);
      const page = await res.text();
      assert.match(page, /<h1>Not recorded<\/h1>/, path);
      const typed = Object.values(fields).find((v) => v.includes("<")) as string;
      assert.ok(
        page.includes(typed.replace("<", "&lt;").replace(">", "&gt;")),
        `${path}: ${typed}`,
      );
    }
  } finally {
    await db.dispose().catch(() => {});
  }
});
