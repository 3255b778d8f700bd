// `GET /api/v1/audit` (admin): every operator action, newest first, filterable.
import { Hono } from "hono";
import * as v from "valibot";
import { storableText } from "../../contracts/storable.ts";
import { intParam, parseQuery, timeParam } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import type { AuditRepository } from "./audit_repository.ts";

const text = (max: number) =>
  v.pipe(v.string(), v.minLength(1, "not empty"), v.maxLength(max), storableText);

export const auditQuerySchema = v.object({
  action: v.optional(text(100)),
  actor: v.optional(text(300)),
  target: v.optional(text(300)),
  from: v.optional(timeParam),
  to: v.optional(timeParam),
  limit: v.optional(intParam(1, 500), "100"),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

/** Mounted under `/api/v1`. Filters: `action`, `actor` (subject or name), `target`, `from`, `to`; pages by `cursor`. */
export function auditRoutes(options: { audit: AuditRepository; auth: Auth }): Hono {
  const { audit, auth } = options;
  const app = new Hono();
  app.get("/audit", async function listAudit(c) {
    await auth.require(c, "admin");
    const q = parseQuery(auditQuerySchema, c.req.query());
    return c.json(await audit.list(q));
  });
  return app;
}
