// Stores stream retirements (a line taken out of service for good: its silence pages nobody) and reads them back, with postgres.js.

import type { Sql } from "postgres";
import type { Identity } from "../../contracts/auth.ts";
import { type ErrorCode, HttpError } from "../../contracts/error.ts";
import { unverified } from "../audit/actor.ts";
import { auditInsert } from "../audit/audit_repository.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";
import { endStreamSilentEpisode } from "../notify/feed_conditions.ts";
import type { RetirementAction, RetirementState } from "./retirement_schemas.ts";

// A retirement already in force (409; in contracts/error.ts's catalogue).
const ALREADY_RETIRED: ErrorCode = "already_retired";

/** One retirement, as the API answers it. */
export interface Retirement {
  retirement_id: string;
  stream_id: string;
  retired_at: string;
  retired_by: string;
  reason: string;
  /** The stream's last accepted frame as the engine listed it when retired; null: not listed. */
  last_accepted_at: string | null;
  ended_at: string | null;
  /** Who ended it; null when it ended by itself (the stream sent again). */
  ended_by: string | null;
  end_reason: string | null;
  state: RetirementState;
}

interface RetirementRow {
  retirement_id: string;
  stream_id: string;
  retired_at: Date;
  retired_by: string;
  reason: string;
  last_accepted_at: Date | null;
  ended_at: Date | null;
  ended_by: string | null;
  end_reason: string | null;
}

function toRetirement(r: RetirementRow): Retirement {
  return {
    retirement_id: r.retirement_id,
    stream_id: r.stream_id,
    retired_at: r.retired_at.toISOString(),
    retired_by: r.retired_by,
    reason: r.reason,
    last_accepted_at: r.last_accepted_at?.toISOString() ?? null,
    ended_at: r.ended_at?.toISOString() ?? null,
    ended_by: r.ended_by,
    end_reason: r.end_reason,
    state: r.ended_at ? "ended" : "in_force",
  };
}

/**
 * The retirements over a postgres.js client; `now` dates them. A retirement is only ever inserted
 * and ended (ended_* set once, by a person or by the feed watch when the stream sends again),
 * never deleted; one in force per stream.
 *
 * @example const retirements = createRetirementRepository(db, Date.now); await retirements.retire("line-7", { reason: "line removed", by: "Ana" });
 */
export function createRetirementRepository(
  db: Pick<Database, "sql" | "recover">,
  now: () => number,
) {
  const client = () => db.sql;
  const failed = dbErrorTranslator(db);

  /**
   * Retires `streamId` now: its silence's open episode ends in the same statement (its routes hear
   * the end only if they heard the opening), and the watch opens none while it is in force.
   * `lastAcceptedAt`: the stream's last frame as the engine lists it now (absent: the open
   * episode's, if any). 409 `already_retired` when one is in force; nothing is written then.
   */
  async function retire(
    streamId: string,
    action: RetirementAction,
    actor?: Identity,
    lastAcceptedAt?: Date,
  ): Promise<Retirement> {
    const sql = client();
    const at = new Date(now());
    const id = crypto.randomUUID();
    try {
      // The stream's lock first (as the feed watch's insert takes it, migration 0027), then the
      // statement, whose snapshot then holds an episode the watch opened meanwhile: it ends it.
      const retire = async (tx: Sql) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext(${`stream_retirement:${streamId}`}))`;
        const audit = auditInsert(
          tx,
          {
            action: "stream.retire",
            target: `stream:${streamId}`,
            actor: actor ?? unverified(action.by),
            at,
            detail: { retirement_id: id, reason: action.reason },
          },
          "inserted",
        );
        return await tx<RetirementRow[]>`
        WITH inserted AS (
          INSERT INTO stream_retirement (retirement_id, stream_id, retired_at, retired_by, reason,
            last_accepted_at)
          VALUES (${id}, ${streamId}, ${at}, ${action.by}, ${action.reason},
            COALESCE(${lastAcceptedAt ?? null}::timestamptz,
              (SELECT since FROM feed_condition WHERE kind = 'stream_silent'
                AND subject = ${streamId} AND ended_at IS NULL LIMIT 1)))
          RETURNING *
        ), ended AS (${endStreamSilentEpisode(tx, streamId, at, "inserted")}),
        audited AS (${audit})
        SELECT * FROM inserted`;
      };
      const [row] = await sql.begin((tx) => retire(tx as unknown as Sql));
      return toRetirement(row);
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === "23505") {
        throw new HttpError(409, ALREADY_RETIRED, `stream ${streamId} is already retired`);
      }
      return failed(error);
    }
  }

  /**
   * Ends the retirement in force of `streamId` now (who, when, why, once): the stream is watched
   * again. `undefined` when none is in force.
   */
  async function end(
    streamId: string,
    action: RetirementAction,
    actor?: Identity,
  ): Promise<Retirement | undefined> {
    const sql = client();
    const at = new Date(now());
    const audit = auditInsert(
      sql,
      {
        action: "stream.retirement_end",
        target: `stream:${streamId}`,
        actor: actor ?? unverified(action.by),
        at,
        detail: { reason: action.reason },
      },
      "updated",
    );
    const [row] = await sql<RetirementRow[]>`
      WITH updated AS (
        UPDATE stream_retirement SET ended_at = ${at}, ended_by = ${action.by},
          end_reason = ${action.reason}
        WHERE stream_id = ${streamId} AND ended_at IS NULL
        RETURNING *
      ), audited AS (${audit})
      SELECT * FROM updated`.catch(failed);
    return row ? toRetirement(row) : undefined;
  }

  /** Retirements newest first: those in force, or all (ended ones too). */
  async function list(q: { state: "in_force" | "all"; limit: number }): Promise<Retirement[]> {
    const sql = client();
    const rows = await sql<RetirementRow[]>`
      SELECT * FROM stream_retirement
      ${q.state === "in_force" ? sql`WHERE ended_at IS NULL` : sql``}
      ORDER BY retired_at DESC, retirement_id DESC
      LIMIT ${q.limit}`.catch(failed);
    return rows.map(toRetirement);
  }

  return { retire, end, list };
}

export type RetirementRepository = ReturnType<typeof createRetirementRepository>;
