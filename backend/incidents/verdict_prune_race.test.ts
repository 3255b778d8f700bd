// A verdict or acknowledgement given while the pruner deletes that incident, on PostgreSQL
// (several connections): the incident is gone, so 404, not a 500 from the foreign key.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import postgres from "postgres";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { deleteIncidentBatch } from "../retention/prune_queries.ts";
import { incidentAlert } from "./_fixtures.ts";

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  describe(`operator actions racing the pruner on ${target.kind}`, () => {
    for (const action of ["verdict", "ack"] as const) {
      test(`a ${action} on an incident being pruned answers 404 not_found`, async () => {
        const db = await target.open();
        const [{ schema }] = await db.sql`SELECT current_schema() AS schema`;
        const pruner = postgres(process.env.DATABASE_URL as string, {
          max: 1,
          onnotice: () => {},
          connection: { search_path: schema },
        });
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
          // The pruner's batch deletes the incident and holds its transaction open a while.
          let deleted = () => {};
          const inBatch = new Promise<void>((resolve) => {
            deleted = resolve;
          });
          const pruning = pruner.begin(async (tx) => {
            const n = await deleteIncidentBatch(
              tx as unknown as postgres.Sql,
              new Date(Date.now() - 30 * 86_400_000),
              200,
            );
            deleted();
            await new Promise((r) => setTimeout(r, 800));
            return n;
          });
          await inBatch;
          const body =
            action === "verdict" ? { verdict: "false_positive", by: "Ana" } : { by: "Ana" };
          const res = await app.request(`/api/v1/incidents/${id}/${action}`, post(body));
          await pruning;
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
