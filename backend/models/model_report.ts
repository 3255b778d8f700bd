// Reading a retraining's report through the backend (viewer): forwarded to the engine's GET /models/{name}/retrains/{version}.
import { Hono } from "hono";
import { HttpError } from "../../contracts/error.ts";
import {
  MODEL_NAME_PATTERN,
  type RetrainReport,
  retrainReportSchema,
  VERSION_PATTERN,
} from "../../contracts/models_api.ts";
import { getFromEngine } from "./engine_call.ts";

export interface RetrainReportReaderOptions {
  engineUrl: string;
  /** The engine's `ADMIN_TOKEN`, when it has one (the engine's route is behind it). */
  adminToken?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Returns `read(name, version)`: the report the retraining of candidate `version` wrote, from the
 * engine. A name or version that cannot be one is `400 invalid_request` (the engine is not
 * asked); the engine's refusals come back with their status and code (404 model_not_found,
 * version_not_found, report_not_found; 422 report_invalid); an unreachable engine is 502
 * `engine_unreachable`.
 *
 * @example await createRetrainReportReader({ engineUrl })("plant", "2.3.0+9fa2419cba78");
 */
export function createRetrainReportReader(options: RetrainReportReaderOptions) {
  const { engineUrl, adminToken, timeoutMs = 5000 } = options;
  return async function readRetrainReport(name: string, version: string): Promise<RetrainReport> {
    if (!MODEL_NAME_PATTERN.test(name)) {
      throw new HttpError(400, "invalid_request", `'name' is not a model name: ${name}`);
    }
    if (!VERSION_PATTERN.test(version) || version.includes("..")) {
      throw new HttpError(400, "invalid_request", `'version' is not a model version: ${version}`);
    }
    return getFromEngine(
      { engineUrl, adminToken, fetch: options.fetch, timeoutMs },
      `/models/${encodeURIComponent(name)}/retrains/${encodeURIComponent(version)}`,
      retrainReportSchema,
    );
  };
}

export type RetrainReportReader = ReturnType<typeof createRetrainReportReader>;

/**
 * Mounted under `/api/v1`: `GET /models/:name/retrains/:version`, the report as the engine stores
 * it (any signed-in role: reading models is a viewer's right, checked by the auth middleware).
 */
export function modelReportRoutes(options: { read: RetrainReportReader }): Hono {
  const { read } = options;
  const app = new Hono();
  app.get("/models/:name/retrains/:version", async function retrainReport(c) {
    return c.json(await read(c.req.param("name"), c.req.param("version")));
  });
  return app;
}
