// GET /api/v1/audit over the real app and database: the actor filter matches what events show.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { createAuditRepository } from "./audit_repository.ts";

for (const target of testTargets()) {
  describe(`audit API on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      // AUTH_MODE=none, as `npm start` runs: every subject is `anonymous`, the name is typed.
      app = createBackendApp({ database: db });
      for (const by of ["Ana", "Bo", "Ana"]) {
        const id = crypto.randomUUID();
        const alert = incidentAlert({
          incidentId: id,
          event: "opened",
          sensors: [{ idx: 1, severity: 2 }],
        });
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
        const verdict = { verdict: "maintenance", by };
        const res = await app.request(`/api/v1/incidents/${id}/verdict`, post(verdict));
        assert.equal(res.status, 201, await res.text());
      }
    });
    after(() => db.dispose());

    const names = async (query: string) => {
      const res = await app.request(`/api/v1/audit?${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      const { events } = await res.json();
      return events.map((e: { actor: { name: string } }) => e.actor.name);
    };

    test("audit filter by actor matches the name events show as well as the subject", async () => {
      assert.deepEqual(await names("actor=Ana"), ["Ana", "Ana"]);
      assert.deepEqual(await names("actor=Bo"), ["Bo"]);
      assert.deepEqual(await names("actor=anonymous"), ["Ana", "Bo", "Ana"], "the subject still");
      assert.deepEqual(await names("actor=Carl"), []);
      assert.deepEqual(
        await names("actor=Ana&action=incident.verdict&limit=1").then((n) => n.length),
        1,
      );
    });

    test("audit pages through events of one millisecond newest first, none skipped or repeated", async () => {
      // Actions of several people at once share their request's instant.
      const at = new Date("2026-12-01T08:00:00.000Z");
      const audit = createAuditRepository(db);
      const actor = {
        subject: "token:olga",
        name: "olga",
        method: "token" as const,
        role: "operator" as const,
      };
      for (let i = 1; i <= 12; i++) {
        await audit.record({ action: "test.tie", target: `t${i}`, actor, at });
      }
      const seen: string[] = [];
      let cursor = "";
      for (let page = 0; page < 10; page++) {
        const res = await app.request(`/api/v1/audit?action=test.tie&limit=4${cursor}`);
        assert.equal(res.status, 200);
        const body = await res.json();
        seen.push(...body.events.map((e: { target: string }) => e.target));
        if (!body.next_cursor) break;
        cursor = `&cursor=${encodeURIComponent(body.next_cursor)}`;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 12 }, (_, i) => `t${12 - i}`),
        "each event once, the newest (the highest id) first",
      );
    });
  });
}
