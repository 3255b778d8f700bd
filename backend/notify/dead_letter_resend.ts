// Re-sending dead letters (admin): a dead message back to pending under its own webhook-id, audited with who, when and why.
import * as v from "valibot";
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { storableText } from "../../contracts/storable.ts";
import { auditInsert } from "../audit/audit_repository.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";
import { createDeadLetterList } from "./dead_letter_list.ts";
import type { OutboxEvent } from "./notification_payload.ts";

/** A message's id (its `webhook-id`), as `messageId` derives it. */
export const MESSAGE_ID_PATTERN = /^msg_[0-9a-f]{32}$/;
/** A route's name, as NOTIFY_CONFIG allows it. */
export const ROUTE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Dead letters one route re-send takes at most (`more` says when some are left). */
export const RESEND_BATCH = 1000;

/** The body of a re-send: why (optional); `by` is the signed-in identity's, typed only without sign-in. */
export const resendRequestSchema = v.strictObject({
  by: v.optional(
    v.pipe(
      v.string("a name"),
      v.trim(),
      v.minLength(1, "a name of 1..200 characters"),
      v.maxLength(200, "a name of 1..200 characters"),
      storableText,
    ),
  ),
  reason: v.optional(
    v.pipe(v.string("text"), v.trim(), v.maxLength(1000, "at most 1,000 characters"), storableText),
  ),
});

export type ResendRequest = v.InferOutput<typeof resendRequestSchema>;

/** A message sent again. */
export interface ResentMessage {
  message_id: string;
  route: string;
  event: OutboxEvent;
  /** What it is about: an incident, or a feed condition (exactly one of the two). */
  incident_id: string | null;
  condition_id: string | null;
}

/** Reminder row `o`'s incident was acknowledged. */
function acknowledged(sql: Database["sql"]) {
  return sql`EXISTS (SELECT 1 FROM incident_ack k WHERE k.incident_id = o.incident_id)`;
}

/** Reminder row `o`'s incident was given a verdict. */
function judged(sql: Database["sql"]) {
  return sql`EXISTS (SELECT 1 FROM incident_verdict j WHERE j.incident_id = o.incident_id)`;
}

/** Reminder row `o` was replaced by a newer reminder of its route about the same incident. */
function newerReminder(sql: Database["sql"]) {
  return sql`EXISTS (SELECT 1 FROM notification_outbox n
    WHERE n.route = o.route AND n.incident_id = o.incident_id AND n.event = 'still_open'
      AND n.event_at > o.event_at)`;
}

/**
 * Outbox row `o` may be sent again: not a message that would reach its receiver after its
 * incident's end (a reminder of a resolved incident; an opening or update once the route's
 * `resolved` went out or was decided against), which would raise a page that nothing closes; nor
 * a reminder that the outbox would set aside unsent (its incident taken by a person, or a newer
 * reminder planned: the same rules as `settle` in outbox_repository.ts).
 */
function resendable(sql: Database["sql"]) {
  return sql`(NOT (o.event = 'condition_opened' AND ${conditionEnded(sql)})
    AND NOT EXISTS (SELECT 1 FROM incident i
    WHERE i.incident_id = o.incident_id AND i.resolved_at IS NOT NULL
      AND (o.event = 'still_open' OR (o.event <> 'resolved' AND NOT EXISTS (
        SELECT 1 FROM notification_outbox r
        WHERE r.incident_id = o.incident_id AND r.route = o.route AND r.event = 'resolved'
          AND r.state IN ('pending', 'dead')))))
    AND NOT (o.event = 'still_open'
      AND (${acknowledged(sql)} OR ${judged(sql)} OR ${newerReminder(sql)})))`;
}

/**
 * Row `o` is about a feed condition that has ended: its opening, sent again, would raise a page
 * after the end its route was sent (or that it never needs).
 */
function conditionEnded(sql: Database["sql"]) {
  return sql`EXISTS (SELECT 1 FROM feed_condition fc
    WHERE fc.condition_id = o.condition_id AND fc.ended_at IS NOT NULL)`;
}

/** Why a dead reminder that is not {@link resendable} stays dead. */
function reminderRefusal(
  messageId: string,
  found: { ended: boolean; acknowledged: boolean; judged: boolean; newer: boolean },
): string {
  const reminds = `message ${messageId} reminds of an incident`;
  if (found.ended) return `${reminds} that has ended: a reminder is never sent after the end`;
  if (found.acknowledged || found.judged) {
    const how = found.acknowledged ? "acknowledged" : "judged (it has a verdict)";
    return `${reminds} that has been ${how}: reminders stop once a person takes an incident`;
  }
  return `${reminds} for which a newer reminder exists: only the latest reminder is ever sent`;
}

/**
 * Sets dead row `o` pending again, due now, with its tries counted afresh (id and body kept);
 * `last_attempt_at` stays: it was tried, so it may have reached the receiver (a silence spares it).
 */
function backToPending(sql: Database["sql"], at: Date) {
  return sql`UPDATE notification_outbox o SET state = 'pending', attempts = 0,
    next_attempt_at = ${at}, locked_until = NULL, done_at = NULL`;
}

/**
 * Re-sends dead letters: each goes back to `pending` (attempts 0, due now) under the same
 * message id, so it is delivered with the same `webhook-id` and body as its tries before, and the
 * dispatcher takes it on its next pass. Recorded in the audit trail in the same statement
 * (`notification.resend`: who, when, why).
 *
 * @example await createDeadLetterResender(db, Date.now).resend("msg_…", { reason: "receiver back" }, who);
 */
export function createDeadLetterResender(db: Pick<Database, "sql" | "recover">, now: () => number) {
  const failed = dbErrorTranslator(db);

  /**
   * Re-sends one dead letter. 400 `invalid_request` for an id that is none, 404 `not_found` for
   * an unknown one, 409 `not_dead_letter` for a message that is not dead, would come after its
   * incident's end, or is a reminder the outbox would set aside unsent (its incident acknowledged
   * or judged, or a newer reminder planned), the message saying which; nothing changes then.
   */
  async function resend(
    messageId: string,
    request: ResendRequest,
    actor: Identity,
  ): Promise<ResentMessage> {
    if (!MESSAGE_ID_PATTERN.test(messageId)) {
      throw new HttpError(400, "invalid_request", `'message_id' is not a message id: ${messageId}`);
    }
    const sql = db.sql;
    const at = new Date(now());
    const audit = auditInsert(
      sql,
      {
        action: "notification.resend",
        target: `notification:${messageId}`,
        actor,
        at,
        detail: { reason: request.reason || null },
      },
      "resent",
    );
    const [resent] = await sql<ResentMessage[]>`
      WITH resent AS (
        ${backToPending(sql, at)}
        WHERE o.message_id = ${messageId} AND o.state = 'dead' AND ${resendable(sql)}
        RETURNING o.message_id, o.route, o.event, o.incident_id, o.condition_id
      ), audited AS (${audit})
      SELECT * FROM resent`.catch(failed);
    if (resent) return resent;
    const [found] = await sql<
      {
        state: string;
        event: OutboxEvent;
        ended: boolean;
        acknowledged: boolean;
        judged: boolean;
        newer: boolean;
      }[]
    >`
      SELECT o.state, o.event,
        EXISTS (SELECT 1 FROM incident i
          WHERE i.incident_id = o.incident_id AND i.resolved_at IS NOT NULL)
          OR ${conditionEnded(sql)} AS ended,
        ${acknowledged(sql)} AS acknowledged, ${judged(sql)} AS judged,
        ${newerReminder(sql)} AS newer
      FROM notification_outbox o WHERE o.message_id = ${messageId}`.catch(failed);
    if (!found) throw new HttpError(404, "not_found", `no message ${messageId}`);
    if (found.state !== "dead") {
      throw new HttpError(
        409,
        "not_dead_letter",
        `message ${messageId} is ${found.state}, not a dead letter: nothing to re-send`,
      );
    }
    throw new HttpError(
      409,
      "not_dead_letter",
      found.event === "still_open"
        ? reminderRefusal(messageId, found)
        : found.event === "condition_opened"
          ? `message ${messageId} (${found.event}) is about a feed condition that has ended: re-sent, it would open a page after its end`
          : `message ${messageId} (${found.event}) is about an incident that has ended, and its route's end message is not waiting to be sent: re-sent, it would open a page that nothing closes`,
    );
  }

  /**
   * Re-sends the dead letters of `route` (up to RESEND_BATCH, oldest first; `more` when some are
   * left), but those that would come after their incident's end or that are reminders the outbox
   * would set aside unsent; one audit record lists them.
   */
  async function resendRoute(
    route: string,
    request: ResendRequest,
    actor: Identity,
  ): Promise<{ resent: ResentMessage[]; more: boolean }> {
    if (!ROUTE_NAME_PATTERN.test(route)) {
      throw new HttpError(400, "invalid_request", `'route' is not a route name: ${route}`);
    }
    const sql = db.sql;
    const at = new Date(now());
    const dead = await sql<{ message_id: string }[]>`
      SELECT o.message_id FROM notification_outbox o
      WHERE o.route = ${route} AND o.state = 'dead' AND ${resendable(sql)}
      ORDER BY o.event_at, o.message_id LIMIT ${RESEND_BATCH + 1}`.catch(failed);
    const ids = dead.slice(0, RESEND_BATCH).map((d) => d.message_id);
    if (ids.length === 0) return { resent: [], more: false };
    // The record lists the letters read here; one that someone else re-sent in the instant
    // between is sent once all the same (the update takes dead ones only).
    const audit = auditInsert(
      sql,
      {
        action: "notification.resend",
        target: `notify_route:${route}`,
        actor,
        at,
        detail: { reason: request.reason || null, message_ids: ids },
      },
      "one",
    );
    const resent = await sql<ResentMessage[]>`
      WITH resent AS (
        ${backToPending(sql, at)}
        WHERE o.message_id = ANY(${ids}::text[]) AND o.state = 'dead' AND ${resendable(sql)}
        RETURNING o.message_id, o.route, o.event, o.incident_id, o.condition_id
      ), one AS (SELECT 1 FROM resent LIMIT 1), audited AS (${audit})
      SELECT * FROM resent ORDER BY message_id`.catch(failed);
    return { resent: [...resent], more: dead.length > RESEND_BATCH };
  }

  // Listing lives beside re-sending, so the routes that serve both take one part.
  return { resend, resendRoute, list: createDeadLetterList(db) };
}

export type DeadLetterResender = ReturnType<typeof createDeadLetterResender>;
