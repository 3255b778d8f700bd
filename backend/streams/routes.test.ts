// Stream retirements over the real app and database (PGlite and PostgreSQL): validation, roles, one in force, the audit, ended and never erased.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { tokenDigest } from "../../contracts/auth.ts";
import { createBackendApp } from "../app.ts";
import { createAuth } from "../auth/auth.ts";
import { createFailureLimiter } from "../auth/failure_limiter.ts";
import { openTokenStore } from "../auth/token_store.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";

const VIEWER = "victor-token-0123456789";
const OPERATOR = "olga-token-0123456789";
const as = (token: string) => ({ authorization: `Bearer ${token}` });

for (const target of testTargets()) {
  describe(`stream retirements API on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let app: ReturnType<typeof createBackendApp>;
    let clock = Date.parse("2026-12-07T08:00:00Z");

    const send = (path: string, body: unknown, token = OPERATOR) =>
      app.request(`/api/v1${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...as(token) },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const rows = async (stream: string) =>
      db.sql`SELECT * FROM stream_retirement WHERE stream_id = ${stream} ORDER BY retired_at`;
    const audits = async (stream: string) =>
      (
        await db.sql`SELECT action, actor_name, detail FROM audit_event
          WHERE target = ${`stream:${stream}`} ORDER BY audit_id`
      ).map((r) => `${r.action} ${r.actor_name} ${r.detail.reason}`);

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "fix_retire-"));
      const file = join(dir, "tokens.json");
      await writeFile(
        file,
        JSON.stringify([
          { name: "victor", role: "viewer", sha256: await tokenDigest(VIEWER) },
          { name: "olga", role: "operator", sha256: await tokenDigest(OPERATOR) },
        ]),
      );
      const tokens = await openTokenStore({ path: file, checkEveryMs: 0 });
      const auth = createAuth({
        mode: "token",
        tokens,
        limiter: createFailureLimiter({ max: 50 }),
      });
      app = createBackendApp({ database: db, auth, clock: { now: () => clock } });
    });
    after(async () => {
      await db.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("an operator retires a stream (201, who from sign-in, audited); a second is 409 already_retired; ending keeps the row with who, when, why; then 404", async () => {
      const res = await send("/streams/line-7/retirement", { reason: "line removed" });
      assert.equal(res.status, 201, await res.clone().text());
      const { retirement } = await res.json();
      assert.equal(retirement.stream_id, "line-7");
      assert.equal(retirement.retired_by, "olga");
      assert.equal(retirement.retired_at, new Date(clock).toISOString());
      assert.equal(retirement.state, "in_force");
      assert.equal(retirement.last_accepted_at, null);

      const twice = await send("/streams/line-7/retirement", { reason: "again" });
      assert.equal(twice.status, 409);
      assert.equal((await twice.json()).error, "already_retired");

      const inForce = await app.request("/api/v1/streams/retirements", { headers: as(VIEWER) });
      assert.equal(inForce.status, 200);
      assert.deepEqual(
        (await inForce.json()).retirements.map((r: { stream_id: string }) => r.stream_id),
        ["line-7"],
      );

      clock += 60_000;
      const ended = await send("/streams/line-7/retirement/end", { reason: "line back" });
      assert.equal(ended.status, 200, await ended.clone().text());
      const after = (await ended.json()).retirement;
      assert.equal(after.state, "ended");
      assert.equal(after.ended_by, "olga");
      assert.equal(after.end_reason, "line back");
      assert.equal(after.ended_at, new Date(clock).toISOString());
      assert.equal((await send("/streams/line-7/retirement/end", { reason: "x" })).status, 404);

      const all = await app.request("/api/v1/streams/retirements?state=all", {
        headers: as(VIEWER),
      });
      assert.deepEqual(
        (await all.json()).retirements.map((r: { state: string }) => r.state),
        ["ended"],
      );
      assert.equal((await rows("line-7")).length, 1, "ended, never erased");
      assert.deepEqual(await audits("line-7"), [
        "stream.retire olga line removed",
        "stream.retirement_end olga line back",
      ]);
      // The database keeps it too: no delete, no second end.
      await assert.rejects(db.sql`DELETE FROM stream_retirement WHERE stream_id = 'line-7'`);
      await assert.rejects(
        db.sql`UPDATE stream_retirement SET end_reason = 'other' WHERE stream_id = 'line-7'`,
      );
      // Retired again later: a new record in force.
      assert.equal((await send("/streams/line-7/retirement", { reason: "gone" })).status, 201);
      assert.equal((await rows("line-7")).length, 2);
    });

    test("bad input is refused with its code and field, and changes nothing; a viewer may read but not act", async () => {
      const refused = async (res: Response, status: number, code: string, says?: string) => {
        assert.equal(res.status, status);
        const body = await res.json();
        assert.equal(body.error, code, body.message);
        if (says) assert.match(body.message, new RegExp(says));
      };
      await refused(
        await send("/streams/bad%20id/retirement", { reason: "x" }),
        400,
        "invalid_request",
        "'stream_id'",
      );
      await refused(
        await send("/streams/line-8/retirement", {}),
        400,
        "invalid_request",
        "'reason' is required",
      );
      await refused(
        await send("/streams/line-8/retirement", { reason: "   " }),
        400,
        "invalid_request",
        "'reason' must be",
      );
      await refused(
        await send("/streams/line-8/retirement", { reason: "x", extra: 1 }),
        400,
        "invalid_request",
        "'extra' is not a field",
      );
      await refused(await send("/streams/line-8/retirement", "{"), 400, "invalid_json");
      await refused(
        await send("/streams/line-8/retirement", { reason: "x" }, VIEWER),
        403,
        "forbidden",
      );
      await refused(
        await app.request("/api/v1/streams/line-8/retirement", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ reason: "x" }),
        }),
        401,
        "unauthenticated",
      );
      await refused(
        await app.request("/api/v1/streams/retirements?state=gone", { headers: as(VIEWER) }),
        400,
        "invalid_request",
        "'state'",
      );
      assert.deepEqual([...(await rows("line-8"))], []);
      assert.deepEqual(await audits("line-8"), []);
    });
  });
}
