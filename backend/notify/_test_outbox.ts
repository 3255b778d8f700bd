// Test helper: a fresh database, backend app and receiver per describe, and the outbox reads the notification tests share.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import type { TestDatabase, TestTarget } from "../db/_test_databases.ts";
import { type Receiver, startReceiver } from "./_test_receiver.ts";
import {
  createNotificationDispatcher,
  type NotificationDispatcherOptions,
} from "./notification_dispatcher.ts";
import { parseNotifyConfig } from "./notify_config.ts";

/** A route that takes events of any age unless it says: test frames are dated days back. */
export const anyAge = (route: unknown) => ({ max_age: "36500d", ...(route as object) });

/** A fresh database, app and receiver for the enclosing describe, with helpers over them. */
export function outboxKit(target: TestTarget) {
  let db: TestDatabase;
  let app: ReturnType<typeof createBackendApp>;
  let receiver: Receiver;
  before(async () => {
    db = await target.open();
    app = createBackendApp({ database: db });
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver.close();
    await db.dispose();
  });
  return {
    /** The database the describe's tests share (set once `before` has run). */
    get db() {
      return db;
    },
    /** The backend app over `db`. */
    get app() {
      return app;
    },
    /** The receiver every hook points at. */
    get receiver() {
      return receiver;
    },
    /** Stores an alert through the API, which must answer 201. */
    async store(alert: unknown) {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.text());
    },
    /** `[event, state]` of each outbox message of `incident` on `route`, in planning order. */
    async rows(route: string, incident: string) {
      return (
        await db.sql<{ event: string; state: string }[]>`
          SELECT event, state FROM notification_outbox
          WHERE route = ${route} AND incident_id = ${incident}
          ORDER BY created_at, event_at, message_id`
      ).map((r) => [r.event, r.state]);
    },
    /** Waits until `route` holds exactly `n` messages of `incident`, none pending. */
    settled(route: string, incident: string, n: number) {
      return waitFor(async () => {
        const [{ total, pending }] = await db.sql<{ total: number; pending: number }[]>`
          SELECT count(*)::int AS total, count(*) FILTER (WHERE state = 'pending')::int AS pending
          FROM notification_outbox WHERE route = ${route} AND incident_id = ${incident}`;
        return total === n && pending === 0 ? true : undefined;
      }, `${n} settled messages on ${route}`);
    },
    /** The parsed bodies of what reached `path` and was answered 200. */
    bodies(path: string) {
      return receiver
        .on(path)
        .filter((r) => r.answered === 200)
        .map((r) => JSON.parse(r.body));
    },
    /** A webhook to the receiver at `path`, with any `more` settings. */
    hook(path: string, more: Record<string, unknown> = {}) {
      return { url: `${receiver.url}${path}`, ...more };
    },
    /** A dispatcher over `db` for `routes` (taken as written), polling every 20 ms. */
    dispatcher(routes: unknown[], extra: Partial<NotificationDispatcherOptions> = {}) {
      return createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(JSON.stringify({ routes }), {}),
        pollMs: 20,
        ...extra,
      });
    },
  };
}
