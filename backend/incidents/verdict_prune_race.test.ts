// Operator actions racing other connections on PostgreSQL: a verdict or acknowledgement given
// while the pruner deletes that incident (the incident is gone, so 404, not a 500 from the
// foreign key), and two first verdicts given at once (one is first, 201; the other a change, 200).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type postgres from "postgres";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { holdLocks, otherConnection, waitForLockWaits } from "../db/_test_locks.ts";
import { deleteIncidentBatch } from "../retention/prune_queries.ts";
import { incidentAlert } from "./_fixtures.ts";

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  describe(`operator actions racing the pruner on ${target.kind}`, () => {
    for (const action of ["verdict", "ack"] as const) {
      test(`a ${action} on an incident being pruned answers 404 not_found`, async () => {
        const db = await target.open();
        const pruner = await otherConnection(db);
        try {
          const app = createBackendApp({ database: db });
          const id = crypto.randomUUID();
          for (const event of ["opened", "resolved"] as const) {
            const alert = incidentAlert({
              incidentId: id,
              event,
              start: "2024-01-01T00:00:00Z",
              at: event === "resolved" ? 60 : 0,
              sensors: [{ idx: 1, severity: 9 }],
            });
            assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
          }
          await db.sql`UPDATE incident SET stored_at = '2024-01-01' WHERE incident_id = ${id}`;
          await db.sql`UPDATE incident_event SET notify_planned_at = now()`;
          // The pruner's batch deletes the incident and holds its transaction open until the
          // action waits for it.
          const pruning = await holdLocks(pruner, (tx) =>
            deleteIncidentBatch(tx as postgres.Sql, new Date(Date.now() - 30 * 86_400_000), 200),
          );
          const body =
            action === "verdict" ? { verdict: "false_positive", by: "Ana" } : { by: "Ana" };
          const answer = app.request(`/api/v1/incidents/${id}/${action}`, post(body));
          // The action waits for the pruner's row lock before the pruner commits.
          await waitForLockWaits(db.sql, 1);
          await pruning.release();
          const res = await answer;
          assert.equal(res.status, 404, await res.clone().text());
          assert.equal((await res.json()).error, "not_found");
        } finally {
          await pruner.end();
          await db.dispose();
        }
      });
    }
  });
}

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  describe(`verdicts given at once on ${target.kind}`, () => {
    test("of two first verdicts given at once, one answers 201 and the other 200", async () => {
      const db = await target.open();
      const locker = await otherConnection(db);
      try {
        // Two connections, so the two requests run at once.
        const app = createBackendApp({ database: db });
        const id = crypto.randomUUID();
        const opened = incidentAlert({
          incidentId: id,
          event: "opened",
          start: "2024-01-01T00:00:00Z",
          at: 0,
          sensors: [{ idx: 1, severity: 9 }],
        });
        assert.equal((await app.request("/api/v1/alert", post(opened))).status, 201);
        // Another connection holds the incident's row, so both verdicts start, then wait.
        const holding = await holdLocks(
          locker,
          (tx) => tx`SELECT 1 FROM incident WHERE incident_id = ${id} FOR UPDATE`,
        );
        const give = (by: string) =>
          app.request(`/api/v1/incidents/${id}/verdict`, post({ verdict: "false_positive", by }));
        const byAna = give("Ana");
        const byBo = give("Bo");
        await waitForLockWaits(db.sql, 2);
        await holding.release();
        const statuses = (await Promise.all([byAna, byBo])).map((r) => r.status).sort();
        assert.deepEqual(statuses, [200, 201]);
        const [{ n }] = await db.sql`
          SELECT count(*)::int AS n FROM incident_verdict WHERE incident_id = ${id}`;
        assert.equal(n, 2, "both verdicts are kept");
      } finally {
        await locker.end();
        await db.dispose();
      }
    });
  });
}
