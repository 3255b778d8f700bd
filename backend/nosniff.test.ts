import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createBackendApp } from "./app.ts";
import { openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";

// Error answers echo what was asked (`not found: /assets/<img …>`) as JSON; a browser told not to
// sniff never renders one as a page. Every answer carries the header, pages, API and errors alike.
let db: Awaited<ReturnType<typeof openDatabase>>;
let app: ReturnType<typeof createBackendApp>;
before(async () => {
  db = await openDatabase();
  await migrate(db.sql);
  app = createBackendApp({ database: db });
});
after(() => db.close());

test("every answer, an error echoing its path included, says nosniff", async () => {
  for (const path of [
    "/assets/%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/api/v1/alerts",
    "/api/v1/incidents/%3Cb%3E",
    "/health/live",
    "/overview",
    "/no/such/page",
  ]) {
    const res = await app.request(path);
    await res.arrayBuffer();
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", `${path} (${res.status})`);
  }
  const refused = await app.request("/api/v1/alert", { method: "POST", body: "{" });
  await refused.arrayBuffer();
  assert.equal(refused.headers.get("x-content-type-options"), "nosniff", "a refused alert");
});
