// Activating a model version through the backend (admin): forwarded to the engine's POST /models/{name}/activate, audited under the signed-in identity.
import { Hono } from "hono";
import type * as v from "valibot";
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import {
  type ActivateResponse,
  activateRequestSchema,
  activateResponseSchema,
  MODEL_NAME_PATTERN,
} from "../../contracts/models_api.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { type AuditRepository, recordDone } from "../audit/audit_repository.ts";
import type { Auth } from "../auth/auth.ts";
import { activationOutcome } from "./activation_outcome.ts";
import { EngineAnswerLost, postToEngine } from "./engine_call.ts";

/** What a person asks for: the engine's request; `by` is the signed-in identity's name (typed only without sign-in). */
export type ActivationBody = v.InferOutput<typeof activateRequestSchema>;

export interface ModelActivatorOptions {
  engineUrl: string;
  /** The engine's `ADMIN_TOKEN`, when it has one. */
  adminToken?: string;
  audit: AuditRepository;
  now: () => number;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** How long a lost answer is read back from `GET /models` (default `READ_BACK_MS`, 10 s). */
  readBackMs?: number;
}

/**
 * Returns `activate(name, body, actor)`: asks the engine, and on success records
 * `model.activate` in the audit. The engine's refusals come back as the same status and code
 * (404 version_not_found, 409 model_incompatible, ...); an engine that could not be reached is
 * 502 `engine_unreachable` (it received nothing). When the answer is lost once the request may
 * have reached it (a timeout, a cut connection), the engine's `GET /models` says what happened
 * (`activationOutcome`): a switch found there is answered and audited as any (`answer_lost` in
 * the audit's detail); otherwise 504 `activation_outcome_unknown`. Nothing is audited unless the
 * engine switched (an `unchanged` answer: the version was active already); a switch the audit
 * cannot record (the database down) is 503 `not_audited`, saying what the engine did.
 *
 * @example await createModelActivator({ engineUrl, audit, now })("plant", { version: "2.3.0" }, identity);
 */
export function createModelActivator(options: ModelActivatorOptions) {
  const { engineUrl, adminToken, audit, now, timeoutMs = 60_000 } = options;
  return async function activate(name: string, body: ActivationBody, actor: Identity) {
    if (!MODEL_NAME_PATTERN.test(name)) {
      throw new HttpError(400, "invalid_request", `'name' is not a model name: ${name}`);
    }
    const engine = { engineUrl, adminToken, fetch: options.fetch, timeoutMs };
    const sentAt = now();
    let answer: ActivateResponse;
    let lost = false;
    try {
      answer = await postToEngine(
        engine,
        `/models/${encodeURIComponent(name)}/activate`,
        { ...body, by: actor.name },
        200,
        activateResponseSchema,
      );
    } catch (error) {
      if (!(error instanceof EngineAnswerLost)) throw error;
      const asked = { version: body.version, by: actor.name, reason: body.reason ?? "", sentAt };
      answer = await activationOutcome(engine, name, asked, error, options.readBackMs);
      lost = true;
    }
    if (answer.unchanged) return answer;
    await recordDone(
      audit,
      {
        action: "model.activate",
        target: `model:${name}`,
        actor,
        at: new Date(now()),
        detail: {
          version: answer.version,
          from: answer.from,
          reason: body.reason ?? null,
          windows_reset: answer.windows_reset,
          // The engine's answer did not come: its GET /models showed the switch.
          ...(lost ? { answer_lost: true } : {}),
        },
      },
      `the engine activated ${name} ${answer.version} (was ${answer.from ?? "none"}); its own activation history (GET /models) holds who, when and why`,
    );
    return answer;
  };
}

export type ModelActivator = ReturnType<typeof createModelActivator>;

/** Mounted under `/api/v1`: `POST /models/:name/activate` `{"version", "reset_windows"?, "reason"?}` (admin). */
export function modelActivationRoutes(options: { auth: Auth; activate: ModelActivator }): Hono {
  const { auth, activate } = options;
  const app = new Hono();
  app.post("/models/:name/activate", async function activateModel(c) {
    const who = await auth.require(c, "admin");
    const text = await bodyText(c.req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(400, "invalid_json", "the body must be a JSON object");
    }
    const parsed = parseBody(activateRequestSchema, auth.named(body, "by", who), "an activation");
    const actor = auth.actor(who, parsed.by);
    return c.json(await activate(c.req.param("name"), parsed, actor));
  });
  return app;
}
