import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { ourAlert, post } from "./_fixtures.ts";

const valid = JSON.stringify(ourAlert({ alert_id: "0b6d4a52-2c4e-4d9a-9a51-3f0b0a3a1c11" }));
const keys = Object.keys(JSON.parse(valid));

/** Bodies that are mostly broken: byte edits of a valid alert, field swaps, random JSON, junk. */
const bodies = fc.oneof(
  // Replace, insert or delete characters of a valid body.
  fc
    .tuple(fc.nat(valid.length - 1), fc.nat(8), fc.string({ maxLength: 6 }))
    .map(([at, cut, insert]) => valid.slice(0, at) + insert + valid.slice(at + cut)),
  // One field set to an arbitrary JSON value (or removed).
  fc
    .tuple(fc.constantFrom(...keys), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }))
    .map(([key, value]) => JSON.stringify({ ...JSON.parse(valid), [key]: value })),
  // A feature entry set to an arbitrary value.
  fc.jsonValue({ maxDepth: 3 }).map((value) => {
    const alert = JSON.parse(valid);
    alert.anomalous_features[0] = value;
    return JSON.stringify(alert);
  }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 200 }),
);

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;
before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db });
});
after(() => db.dispose());

test("POST /api/v1/alert never answers 5xx to malformed bodies and stores only what it accepts", async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(bodies, async (body) => {
      const res = await app.request("/api/v1/alert", post(body));
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok([201, 400, 422].includes(res.status), `status ${res.status} for ${body}`);
    }),
    { numRuns: 2000, seed: 20_261_124 },
  );
  const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM alert`;
  // An accepted mutation reuses the fixture's alert_id (or derives one from the body), so the
  // rows stored can only come from 201 answers.
  assert.ok(n <= (statuses.get(201) ?? 0), `stored ${n} rows for ${statuses.get(201)} accepted`);
  assert.ok(
    (statuses.get(400) ?? 0) > 300 && (statuses.get(422) ?? 0) > 300,
    String([...statuses]),
  );
});
