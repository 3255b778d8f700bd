// Incidents their engine lost, closed by the backend: on PGlite and PostgreSQL, through the app, with the notifier and a real HTTP receiver.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { waitFor } from "../_test/spawn_service.ts";
import { testTargets } from "../db/_test_databases.ts";
import { outboxKit } from "../notify/_test_outbox.ts";
import { incidentAlert } from "./_fixtures.ts";
import { closeSupersededIncidents } from "./superseded_incidents.ts";

const START = "2026-11-24T09:00:00.000Z";
const LATER = "2026-11-24T10:00:00.000Z";

for (const target of testTargets()) {
  describe(`incidents closed as superseded on ${target.kind}`, () => {
    const kit = outboxKit(target);
    const { store } = kit;
    const incident = async (id: string) => {
      const res = await kit.app.request(`/api/v1/incidents/${id}`);
      assert.equal(res.status, 200);
      return await res.json();
    };
    /** Opens an incident on `stream` at `start` (+`at` s) with `model`; answers its id. */
    const open = async (stream: string, start: string, o: { at?: number; model?: string } = {}) => {
      const id = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: id,
          event: "opened",
          start,
          streamId: stream,
          sensors: [{ idx: 3, severity: 12 }],
          ...(o.model ? { model: { name: o.model, version: "1.0.0" } } : {}),
        }),
      );
      if (o.at) {
        await store(
          incidentAlert({
            incidentId: id,
            event: "updated",
            start,
            at: o.at,
            streamId: stream,
            sensors: [{ idx: 3, severity: 20 }],
            ...(o.model ? { model: { name: o.model, version: "1.0.0" } } : {}),
          }),
        );
      }
      return id;
    };
    const everything = () => new Date(Date.now() + 60_000);

    test("an open incident with a later one on its stream and model is resolved at its last alert, marked, with a resolved event; once", async () => {
      const lost = await open("line-lost", START, { at: 40 });
      const next = await open("line-lost", LATER);
      // Its successor stored just now: not yet (the engine may still be retrying its end).
      assert.deepEqual(await closeSupersededIncidents(kit.db, new Date(Date.now() - 60_000)), []);
      assert.equal((await incident(lost)).state, "open");

      const closed = await closeSupersededIncidents(kit.db, everything());
      assert.deepEqual(
        closed.map((c) => [c.incident_id, c.superseded_by, c.stream_id]),
        [[lost, next, "line-lost"]],
      );
      const got = await incident(lost);
      assert.equal(got.state, "resolved");
      assert.equal(got.superseded_by, next);
      assert.equal(got.resolved_at, "2026-11-24T09:00:40.000Z", "at its last alert");
      assert.deepEqual(
        got.timeline.map((e: { event: string; model_name: string | null }) => [
          e.event,
          e.model_name,
        ]),
        [
          ["opened", "featurewise_ocsvm"],
          ["updated", "featurewise_ocsvm"],
          ["resolved", null],
        ],
      );
      const later = await incident(next);
      assert.equal(later.state, "open", "the latest stays open");
      assert.equal(later.superseded_by, null);

      // Again: nothing more closed, no second event.
      assert.deepEqual(await closeSupersededIncidents(kit.db, everything()), []);
      assert.equal((await incident(lost)).timeline.length, 3);

      // The console says what happened and links the later incident.
      const page = await (await kit.app.request(`/incidents/${lost}`)).text();
      assert.match(page, /by the backend: its engine never ended it/);
      assert.match(page, new RegExp(`href="/incidents/${next}"`));
      assert.match(page, /closed by the backend \(superseded\)/);
    });

    test("another stream's or another model's later incident supersedes nothing", async () => {
      const alone = await open("line-alone", START);
      await open("line-other", LATER);
      await open("line-alone", LATER, { model: "boiler" });
      assert.deepEqual(await closeSupersededIncidents(kit.db, everything()), []);
      assert.equal((await incident(alone)).state, "open");
    });

    test("the engine's own resolved arriving after the backend closed it takes its place", async () => {
      const late = await open("line-late", START);
      const next = await open("line-late", LATER);
      assert.equal((await closeSupersededIncidents(kit.db, everything())).length, 1);
      await store(
        incidentAlert({
          incidentId: late,
          event: "resolved",
          start: START,
          at: 90,
          streamId: "line-late",
          sensors: [{ idx: 3, severity: 12 }],
        }),
      );
      const got = await incident(late);
      assert.equal(got.state, "resolved");
      assert.equal(got.superseded_by, null);
      assert.equal(got.resolved_at, "2026-11-24T09:01:30.000Z");
      assert.equal((await incident(next)).state, "open");
    });

    test("whoever was paged for an incident its engine lost hears it resolved, and its reminders stop", async () => {
      const lost = await open("line-paged", START);
      const notify = kit.dispatcher(
        [
          // Its frames are dated 2026-11-24 against the real clock: events of any age.
          { name: "pager", webhook: kit.hook("/pager"), repeat_every: "1s", max_age: "36500d" },
        ],
        { supersedeAfterMs: 1 },
      );
      try {
        // What reached the pager about this stream (earlier tests' incidents are paged too).
        const paged = () =>
          kit.receiver
            .on("/pager")
            .map((r) => JSON.parse(r.body))
            .filter((b) => b.data.incident.stream_id === "line-paged");
        notify.start();
        await waitFor(async () => (paged().length === 1 ? true : undefined), "paged");
        const next = await open("line-paged", LATER);
        await waitFor(
          async () => (paged().length >= 3 ? true : undefined),
          "the end and the next opening delivered",
        );
        // Reminders come every second while an incident is open: once the next incident had two,
        // reminder passes ran after the end, and none may be about the incident that ended.
        await waitFor(
          async () =>
            paged().filter(
              (b) => b.data.incident.incident_id === next && b.type === "incident.still_open",
            ).length >= 2
              ? true
              : undefined,
          "two reminders of the next incident",
        );
        await notify.stop();
        const bodies = paged();
        const about = (id: string) =>
          bodies
            .filter((b) => b.data.incident.incident_id === id)
            .map((b) => b.type)
            .filter((type, i, all) => type !== all[i - 1]);
        assert.equal(about(lost)[0], "incident.opened");
        assert.equal(about(lost).at(-1), "incident.resolved", "nothing after its end");
        assert.deepEqual(about(next).slice(0, 2), ["incident.opened", "incident.still_open"]);
        const resolved = bodies.find((b) => b.type === "incident.resolved");
        assert.equal(resolved.data.incident.state, "resolved");
      } finally {
        await notify.stop();
      }
    });
  });
}
