// HTTP route for the quality report: incidents by current verdict per week, stream and sensor.
import { Hono } from "hono";
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { intParam, parseQuery } from "../alerts/_query_params.ts";
import type { QualityRepository } from "./quality_repository.ts";

/** At most two years of weeks: enough to see a season, bounded so one request stays cheap. */
export const MAX_WEEKS = 104;

/** How many sensors each of the report's sensor tables holds unless `sensors` says otherwise. */
export const QUALITY_SENSORS = 10;

export const qualityQuerySchema = v.object({
  weeks: v.optional(intParam(1, MAX_WEEKS), "12"),
  // Empty is every stream: what the console's form sends when its Stream field is left blank.
  stream_id: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => s === "" || STREAM_ID_PATTERN.test(s), "a stream id (empty: every stream)"),
      v.transform((s) => s || undefined),
    ),
  ),
  sensors: v.optional(intParam(1, 100), String(QUALITY_SENSORS)),
});

/**
 * Mounted under `/api/v1`: `GET /quality?weeks=12&stream_id=&sensors=10`; malformed parameters
 * → 400 `invalid_request` naming the parameter.
 */
export function qualityRoutes(options: { quality: QualityRepository; now: () => number }): Hono {
  const app = new Hono();
  app.get("/quality", async function qualityReport(c) {
    const q = parseQuery(qualityQuerySchema, c.req.query());
    return c.json(
      await options.quality.report({
        weeks: q.weeks,
        streamId: q.stream_id,
        sensors: q.sensors,
        now: new Date(options.now()),
      }),
    );
  });
  return app;
}
