// The audit trail: one row per operator action with who took it; written in the action's own statement, read newest first.
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { decodeKeyset, encodeKeyset } from "../_keyset_cursor.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";

/** One action to record. */
export interface AuditEntry {
  action: string;
  target: string;
  actor: Identity;
  at: Date;
  detail?: Record<string, unknown>;
}

/** One row of `GET /api/v1/audit`. */
export interface AuditEvent {
  audit_id: string;
  at: string;
  action: string;
  target: string;
  actor: { subject: string; name: string; method: string; role: string };
  detail: Record<string, unknown>;
}

interface AuditRow {
  audit_id: string;
  at: Date;
  action: string;
  target: string;
  actor_subject: string;
  actor_name: string;
  actor_method: string;
  actor_role: string;
  detail: Record<string, unknown>;
}

/**
 * The statement recording `e`, to run inside the action's own statement so both commit or
 * neither does: with `from`, one row per row of that CTE (none when the action changed nothing).
 *
 * @example sql`WITH ins AS (INSERT ... RETURNING *), a AS (${auditInsert(sql, entry, "ins")}) SELECT * FROM ins`
 */
export function auditInsert(sql: Database["sql"], e: AuditEntry, from?: string) {
  return sql`
    INSERT INTO audit_event (at, action, target, actor_subject, actor_name, actor_method,
      actor_role, detail)
    SELECT ${e.at}, ${e.action}, ${e.target}, ${e.actor.subject}, ${e.actor.name},
      ${e.actor.method}, ${e.actor.role}, ${JSON.stringify(e.detail ?? {})}::text::jsonb
    ${from ? sql`FROM ${sql(from)}` : sql``}`;
}

function encodeCursor(row: AuditRow): string {
  return encodeKeyset(row.at, String(row.audit_id));
}

/** The largest value of PostgreSQL's bigint (the audit id's type). */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

const decodeCursor = (text: string) =>
  decodeKeyset(text, (id) => /^\d{1,19}$/.test(id) && BigInt(id) <= MAX_BIGINT);

/**
 * Records and lists audit events. There is no update or delete here, and the table refuses both.
 *
 * @example const audit = createAuditRepository(db); await audit.list({ limit: 50 });
 */
export function createAuditRepository(db: Pick<Database, "sql" | "recover">) {
  const failed = dbErrorTranslator(db);

  /** Records one action on its own (for actions that are not a database write of ours). */
  async function record(e: AuditEntry): Promise<void> {
    await auditInsert(db.sql, e).catch(failed);
  }

  /** Events newest first, filtered, one page after `cursor`. */
  async function list(q: {
    action?: string;
    actor?: string;
    target?: string;
    from?: Date;
    to?: Date;
    limit: number;
    cursor?: string;
  }): Promise<{ events: AuditEvent[]; next_cursor: string | null }> {
    const sql = db.sql;
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    const rows = await sql<AuditRow[]>`
      SELECT e.audit_id::text AS audit_id, e.at, e.action, e.target, e.actor_subject,
        e.actor_name, e.actor_method, e.actor_role, e.detail
      FROM audit_event e WHERE true
      ${q.action ? sql`AND action = ${q.action}` : sql``}
      ${
        // The subject (`token:olga`) or the name events show (`olga`; under AUTH_MODE=none the
        // typed one, as every subject is `anonymous`). Each has its own index (0010, 0021).
        q.actor ? sql`AND (actor_subject = ${q.actor} OR actor_name = ${q.actor})` : sql``
      }
      ${q.target ? sql`AND target = ${q.target}` : sql``}
      ${q.from ? sql`AND at >= ${q.from}` : sql``}
      ${q.to ? sql`AND at < ${q.to}` : sql``}
      ${after ? sql`AND (e.at, e.audit_id) < (${after.at}, ${after.id}::bigint)` : sql``}
      -- The table's columns: a bare name would sort by the text alias above (9 before 12), and
      -- events of one millisecond would come out of the cursor's order and be skipped.
      ORDER BY e.at DESC, e.audit_id DESC
      LIMIT ${q.limit + 1}`.catch(failed);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      events: page.map((r) => ({
        audit_id: r.audit_id,
        at: r.at.toISOString(),
        action: r.action,
        target: r.target,
        actor: {
          subject: r.actor_subject,
          name: r.actor_name,
          method: r.actor_method,
          role: r.actor_role,
        },
        detail: r.detail,
      })),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null,
    };
  }

  return { record, list };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;

/** Audits what was already done: three tries, then 503 `not_audited` saying what was done. */
export async function recordDone(audit: AuditRepository, entry: AuditEntry, done: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await audit.record(entry);
    } catch (error) {
      if (attempt === AUDIT_TRIES) {
        const why = error instanceof Error ? error.message : String(error);
        throw new HttpError(
          503,
          "not_audited",
          `${done}, but the audit could not record it: ${why}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

const AUDIT_TRIES = 3;
