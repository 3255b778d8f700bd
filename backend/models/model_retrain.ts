// Asking for a model's retraining now through the backend (admin): forwarded to the engine's POST /models/{name}/retrain, audited under the signed-in identity.
import { Hono } from "hono";
import type * as v from "valibot";
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import {
  MODEL_NAME_PATTERN,
  type RetrainResponse,
  retrainRequestSchema,
  retrainResponseSchema,
} from "../../contracts/models_api.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { recordDone } from "../audit/audit_repository.ts";
import type { Auth } from "../auth/auth.ts";
import { postToEngine } from "./engine_call.ts";
import type { ModelActivatorOptions } from "./model_activation.ts";

/** What a person asks for: why (`by` is the signed-in identity's name; typed only without sign-in). */
export type RetrainBody = v.InferOutput<typeof retrainRequestSchema>;

/** As activation's (the engine's URL and admin token, the audit); under scale-out the replica answers once a worker took the run (up to about 10 s). */
export type ModelRetrainerOptions = ModelActivatorOptions;

/**
 * Returns `retrain(name, body, actor)`: asks the engine to retrain the model now, and once it
 * started the run (`202`) records `model.retrain` in the audit (who, when, why, the run's start
 * and, under scale-out, its worker). The engine's refusals come back with their status and code
 * (404 model_not_found, 409 retrain_running, 409 retrain_unavailable); an unreachable engine is
 * 502 `engine_unreachable`. Nothing is audited unless a run started; a run the audit cannot record
 * is 503 `not_audited`.
 *
 * @example await createModelRetrainer({ engineUrl, audit, now })("plant", { reason: "moved" }, identity);
 */
export function createModelRetrainer(options: ModelRetrainerOptions) {
  const { engineUrl, adminToken, audit, now, timeoutMs = 30_000 } = options;
  return async function retrain(
    name: string,
    body: RetrainBody,
    actor: Identity,
  ): Promise<RetrainResponse> {
    if (!MODEL_NAME_PATTERN.test(name)) {
      throw new HttpError(400, "invalid_request", `'name' is not a model name: ${name}`);
    }
    const answer = await postToEngine(
      { engineUrl, adminToken, fetch: options.fetch, timeoutMs },
      `/models/${encodeURIComponent(name)}/retrain`,
      { ...body, by: actor.name },
      202,
      retrainResponseSchema,
    );
    await recordDone(
      audit,
      {
        action: "model.retrain",
        target: `model:${name}`,
        actor,
        at: new Date(now()),
        detail: {
          reason: body.reason ?? null,
          started_at: answer.run.started_at,
          ...(answer.run.worker ? { worker: answer.run.worker } : {}),
        },
      },
      `the engine started retraining ${name} at ${answer.run.started_at}; its run record (GET /models) names who asked and why`,
    );
    return answer;
  };
}

export type ModelRetrainer = ReturnType<typeof createModelRetrainer>;

/** Mounted under `/api/v1`: `POST /models/:name/retrain` with an optional `{"reason"?}` (admin); `202` once started. */
export function modelRetrainRoutes(options: { auth: Auth; retrain: ModelRetrainer }): Hono {
  const { auth, retrain } = options;
  const app = new Hono();
  app.post("/models/:name/retrain", async function retrainModel(c) {
    const who = await auth.require(c, "admin");
    const text = await bodyText(c.req);
    let body: unknown;
    try {
      body = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      throw new HttpError(400, "invalid_json", "the body must be a JSON object");
    }
    const parsed = parseBody(
      retrainRequestSchema,
      auth.named(body, "by", who),
      "a retraining request",
    );
    const actor = auth.actor(who, parsed.by);
    return c.json(await retrain(c.req.param("name"), parsed, actor), 202);
  });
  return app;
}
