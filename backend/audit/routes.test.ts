// GET /api/v1/audit over the real app and database: the actor filter matches what events show.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";

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
  });
}
