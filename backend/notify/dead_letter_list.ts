// Listing dead letters (any signed-in role): the Health page's table as JSON, newest first, paged by cursor.
import * as v from "valibot";
import { decodeKeyset, encodeKeyset } from "../_keyset_cursor.ts";
import { intParam } from "../alerts/_query_params.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";
import type { OutboxEvent } from "./notification_payload.ts";

/** A route's name, as NOTIFY_CONFIG allows it. */
const ROUTE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MESSAGE_ID = /^msg_[0-9a-f]{32}$/;

/**
 * `GET /api/v1/notifications`: `state` is required and only `dead` is listed (a state named, so
 * that other states can come later without changing what a bare request means).
 */
export const notificationListQuerySchema = v.object({
  state: v.picklist(["dead"], "dead (the only state listed)"),
  route: v.optional(v.pipe(v.string(), v.regex(ROUTE_NAME, "a route name"))),
  limit: v.optional(intParam(1, 1000), "50"),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

export type NotificationListQuery = v.InferOutput<typeof notificationListQuerySchema>;

/** One dead letter, as the Health page's table shows it. */
export interface DeadLetter {
  message_id: string;
  route: string;
  /** What it was about: an incident, or (null here) a feed condition. */
  incident_id: string | null;
  condition_id: string | null;
  event: OutboxEvent;
  attempts: number;
  last_status: number | null;
  /** The receiver's answer or the failure, as stored: without the webhook's URL or its secrets. */
  last_error: string | null;
  /** When it became a dead letter. */
  dead_since: string;
}

const encodeCursor = (row: { done_at: Date; message_id: string }) =>
  encodeKeyset(row.done_at, row.message_id);

const decodeCursor = (text: string) => decodeKeyset(text, (id) => MESSAGE_ID.test(id));

/**
 * Lists dead letters newest first (by when each died), optionally of one route, one page after
 * `cursor`.
 *
 * @example await createDeadLetterList(db)({ state: "dead", limit: 50 });
 */
export function createDeadLetterList(db: Pick<Database, "sql" | "recover">) {
  const failed = dbErrorTranslator(db);
  return async function listDeadLetters(
    q: NotificationListQuery,
  ): Promise<{ notifications: DeadLetter[]; next_cursor: string | null }> {
    const sql = db.sql;
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    // To the millisecond, as the cursor carries it: a timestamp written by PostgreSQL itself with
    // microseconds would otherwise sort apart from its cursor and be skipped or repeated.
    const rows = await sql<(Omit<DeadLetter, "dead_since"> & { done_at: Date })[]>`
      SELECT message_id, route, incident_id, condition_id, event, attempts, last_status,
        last_error,
        date_trunc('milliseconds', done_at) AS done_at
      FROM notification_outbox WHERE state = 'dead'
      ${q.route ? sql`AND route = ${q.route}` : sql``}
      ${
        after
          ? sql`AND (date_trunc('milliseconds', done_at), message_id) < (${after.at}, ${after.id})`
          : sql``
      }
      ORDER BY date_trunc('milliseconds', done_at) DESC, message_id DESC
      LIMIT ${q.limit + 1}`.catch(failed);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      notifications: page.map((r) => ({
        message_id: r.message_id,
        route: r.route,
        incident_id: r.incident_id,
        condition_id: r.condition_id,
        event: r.event,
        attempts: r.attempts,
        last_status: r.last_status,
        last_error: r.last_error,
        dead_since: r.done_at.toISOString(),
      })),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null,
    };
  };
}

export type DeadLetterList = ReturnType<typeof createDeadLetterList>;
