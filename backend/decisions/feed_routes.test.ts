import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as v from "valibot";
import { silenceFeedSchema } from "../../contracts/silence.ts";
import { verdictFeedSchema } from "../../contracts/verdict_feed.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";

const HOUR = 3_600_000;

for (const target of testTargets()) {
  describe(`decision feeds on ${target.kind}`, () => {
    let db: TestDatabase;
    let clock = Date.parse("2026-11-24T09:00:00Z");
    let app: ReturnType<typeof createBackendApp>;

    const silence = async (stream: string, startsInH: number, endsInH: number) => {
      const res = await app.request(
        "/api/v1/silences",
        post({
          matchers: { stream },
          starts_at: new Date(clock + startsInH * HOUR).toISOString(),
          ends_at: new Date(clock + endsInH * HOUR).toISOString(),
          reason: "maintenance",
          created_by: "Ana",
        }),
      );
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()).silence.silence_id as string;
    };
    const pull = async (path: string, etag?: string) =>
      app.request(path, { headers: etag ? { "if-none-match": etag } : {} });

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => clock } });
    });
    after(() => db.dispose());

    test("the effective silences are the active, the pending and the recently over, with an ETag", async () => {
      const active = await silence("feed-a", -1, 2);
      const pending = await silence("feed-p", 5, 6);
      const endsSoon = await silence("feed-e", -1, 1);
      const expired = await silence("feed-x", 0, 48);
      const del = await app.request(`/api/v1/silences/${expired}?by=Ben`, { method: "DELETE" });
      assert.equal(del.status, 200);

      const res = await pull("/api/v1/silences/effective");
      assert.equal(res.status, 200);
      const etag = res.headers.get("etag");
      assert.match(etag ?? "", /^"[\w-]{43}"$/);
      const feed = v.parse(silenceFeedSchema, await res.json());
      assert.equal(feed.as_of, new Date(clock).toISOString());
      const states = Object.fromEntries(feed.silences.map((s) => [s.silence_id, s.state]));
      assert.deepEqual(states, {
        [active]: "active",
        [pending]: "pending",
        [endsSoon]: "active",
        [expired]: "expired",
      });

      // Nothing changed: 304 with no body, also a minute later (as_of is not part of the tag).
      clock += 60_000;
      const same = await pull("/api/v1/silences/effective", etag!);
      assert.equal(same.status, 304);
      assert.equal(await same.text(), "");
      assert.equal(same.headers.get("etag"), etag);
      const weak = await pull("/api/v1/silences/effective", `"other", W/${etag}`);
      assert.equal(weak.status, 304, "a weak or listed tag matches too");

      // A silence created, and one over for more than a day: both change the answer.
      const added = await silence("feed-n", 0, 1);
      const changed = await pull("/api/v1/silences/effective", etag!);
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get("etag"), etag);
      const ids = v
        .parse(silenceFeedSchema, await changed.json())
        .silences.map((s) => s.silence_id);
      assert.ok(ids.includes(added));
      clock += 26 * HOUR;
      const later = v.parse(
        silenceFeedSchema,
        await (await pull("/api/v1/silences/effective")).json(),
      );
      const left = later.silences.map((s) => s.silence_id);
      assert.ok(!left.includes(expired), "over for more than a day");
      assert.ok(!left.includes(endsSoon));
      assert.ok(left.includes(pending), "ended 20 h ago: still served");
    });

    test("the verdict feed lists each judged incident's current verdict, with an ETag", async () => {
      const judge = async (id: string, verdict: string) => {
        const res = await app.request(
          `/api/v1/incidents/${id}/verdict`,
          post({ verdict, by: "Ana" }),
        );
        assert.ok(res.status === 201 || res.status === 200, await res.clone().text());
      };
      const incident = async (start: string) => {
        const id = crypto.randomUUID();
        const res = await app.request(
          "/api/v1/alert",
          post(
            incidentAlert({
              incidentId: id,
              event: "opened",
              start,
              streamId: "judged",
              sensors: [{ idx: 3, severity: 9 }],
            }),
          ),
        );
        assert.equal(res.status, 201);
        return id;
      };
      const early = await incident("2026-11-20T09:00:00Z");
      const late = await incident("2026-11-23T09:00:00Z");
      await incident("2026-11-23T10:00:00Z"); // never judged: not listed

      const empty = await pull("/api/v1/verdicts");
      const emptyTag = empty.headers.get("etag")!;
      assert.deepEqual(v.parse(verdictFeedSchema, await empty.json()).verdicts, []);

      await judge(early, "true_positive");
      await judge(late, "true_positive");
      await judge(late, "false_positive");
      const res = await pull("/api/v1/verdicts", emptyTag);
      assert.equal(res.status, 200);
      const tag = res.headers.get("etag")!;
      const feed = v.parse(verdictFeedSchema, await res.json());
      const byId = Object.fromEntries(feed.verdicts.map((x) => [x.incident_id, x.verdict]));
      assert.deepEqual(byId, { [early]: "true_positive", [late]: "false_positive" });
      assert.equal(feed.verdicts[0].stream_id, "judged");
      assert.equal((await pull("/api/v1/verdicts", tag)).status, 304);

      const since = await pull("/api/v1/verdicts?since=2026-11-22T00:00:00Z");
      const recent = v.parse(verdictFeedSchema, await since.json()).verdicts;
      assert.deepEqual(
        recent.map((x) => x.incident_id),
        [late],
      );
      const bad = await pull("/api/v1/verdicts?since=yesterday");
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).message, /^'since' must be/);

      // An unchanged whole feed answers 304 from one aggregate, without reading the verdicts;
      // a new verdict changes its ETag and the feed is read again.
      const queries: string[] = [];
      const counted = new Proxy(db.sql, {
        apply(target, self, args) {
          queries.push(String((args[0] as TemplateStringsArray)[0] ?? ""));
          return Reflect.apply(target, self, args);
        },
      });
      const watched = createBackendApp({
        database: { ...db, kind: db.kind, sql: counted, recover: () => db.recover() },
        clock: { now: () => clock },
      });
      const again = await watched.request("/api/v1/verdicts", {
        headers: { "if-none-match": tag },
      });
      assert.equal(again.status, 304);
      assert.equal(
        queries.some((q) => q.includes("DISTINCT ON")),
        false,
        `read the feed for a 304: ${queries.join(" | ")}`,
      );
      await judge(early, "false_positive");
      const changed = await watched.request("/api/v1/verdicts", {
        headers: { "if-none-match": tag },
      });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get("etag"), tag);
      const now = v.parse(verdictFeedSchema, await changed.json()).verdicts;
      assert.equal(now.find((x) => x.incident_id === early)?.verdict, "false_positive");
      assert.equal(
        (
          await watched.request("/api/v1/verdicts", {
            headers: { "if-none-match": changed.headers.get("etag")! },
          })
        ).status,
        304,
      );
    });
  });
}
