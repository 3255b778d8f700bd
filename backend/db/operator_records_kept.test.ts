// Migration 0022 on PGlite and PostgreSQL: verdicts and acknowledgements are only added, a silence is only expired once, and no operator record or audit event is erased, TRUNCATE included.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { testTargets } from "./_test_databases.ts";

for (const target of testTargets()) {
  describe(`operator records kept by the database on ${target.kind}`, () => {
    test("a verdict, an acknowledgement, a silence and the audit trail refuse changes and erasure; a silence's one expiry is allowed", async () => {
      const db = await target.open();
      try {
        const app = createBackendApp({ database: db });
        const id = crypto.randomUUID();
        const alert = incidentAlert({
          incidentId: id,
          event: "opened",
          sensors: [{ idx: 1, severity: 2 }],
        });
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
        const verdict = post({ verdict: "maintenance", by: "Ana" });
        assert.equal((await app.request(`/api/v1/incidents/${id}/verdict`, verdict)).status, 201);
        const ack = post({ by: "Ana", note: "checked" });
        assert.equal((await app.request(`/api/v1/incidents/${id}/ack`, ack)).status, 201);
        const silence = post({
          matchers: { stream: "line-9", sensors: [] },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "cleaning",
          created_by: "Ana",
        });
        const created = await app.request("/api/v1/silences", silence);
        assert.equal(created.status, 201);
        const silenceId = (await created.json()).silence.silence_id as string;

        const refused = async (what: string, run: () => Promise<unknown>) => {
          await assert.rejects(run(), /keeps operator records|append-only/, what);
        };
        const sql = db.sql;
        await refused("verdict changed", () => sql`UPDATE incident_verdict SET given_by = 'Eve'`);
        await refused("verdict erased", () => sql`DELETE FROM incident_verdict`);
        await refused("verdicts emptied", () => sql`TRUNCATE incident_verdict`);
        await refused("ack changed", () => sql`UPDATE incident_ack SET acked_by = 'Eve'`);
        await refused("ack erased", () => sql`DELETE FROM incident_ack`);
        await refused("acks emptied", () => sql`TRUNCATE incident_ack`);
        await refused("silence changed", () => sql`UPDATE silence SET created_by = 'Eve'`);
        await refused("silence erased", () => sql`DELETE FROM silence`);
        await refused("silences emptied", () => sql`TRUNCATE silence CASCADE`);
        await refused("audit emptied", () => sql`TRUNCATE audit_event`);
        // Its one expiry, through the API: allowed, and then nothing more.
        const expire = { ...post({ by: "Ben", reason: "done early" }), method: "DELETE" };
        assert.equal((await app.request(`/api/v1/silences/${silenceId}`, expire)).status, 200);
        await refused("expiry changed", () => sql`UPDATE silence SET expired_by = 'Eve'`);
        const [kept] = await sql<{ n: number }[]>`
          SELECT (SELECT count(*) FROM incident_verdict)::int + (SELECT count(*) FROM incident_ack)::int
            + (SELECT count(*) FROM silence)::int AS n`;
        assert.equal(kept.n, 3);
      } finally {
        await db.dispose();
      }
    });
  });
}
