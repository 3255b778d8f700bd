// The engine's model operations API: GET /models, POST /models/{name}/activate and /retrain, GET /models/{name}/retrains/{version}, behind ADMIN_TOKEN.
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import { HttpError } from "../contracts/error.ts";
import { activateRequestSchema, retrainRequestSchema } from "../contracts/models_api.ts";
import type { ModelActivation } from "./model_activation.ts";
import { adminGate } from "./roles/role_shell.ts";

/** The largest body of an activation or retraining request. */
const MAX_REQUEST_BYTES = 64 * 1024;

/** The body checked against `schema`: `400 invalid_json` / `400 invalid_request` naming the field. */
async function bodyOf<S extends v.GenericSchema>(
  c: Context,
  schema: S,
  optional = false,
): Promise<v.InferOutput<S>> {
  let body: unknown;
  try {
    const text = await c.req.text();
    body = optional && text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "the body must be a JSON object");
  }
  const parsed = v.safeParse(schema, body);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const field = v.getDotPath(issue) ?? "(body)";
    throw new HttpError(400, "invalid_request", `${field}: ${issue.message}`);
  }
  return parsed.output;
}

/**
 * Mounts the operations routes on `app`. A body that is not JSON answers `400 invalid_json`, one
 * that breaks the contract `400 invalid_request` naming the field; the activation's own answers
 * are {@link ModelActivation.activate}'s, a retraining's {@link ModelActivation.retrain}'s
 * (`202` once started; its body is optional), a retraining report's
 * {@link ModelActivation.report}'s. Nothing changes on any 4xx.
 */
export function mountModelRoutes(
  app: Hono,
  models: () => ModelActivation | undefined,
  adminToken?: string,
): void {
  const gate = adminGate(adminToken);
  // A person's request, a few hundred bytes: refused past 64 KiB before it is read whole.
  const limit = bodyLimit({
    maxSize: MAX_REQUEST_BYTES,
    onError: () => {
      throw new HttpError(413, "payload_too_large", `request body over ${MAX_REQUEST_BYTES} bytes`);
    },
  });
  const served = () => {
    const m = models();
    if (!m)
      throw new HttpError(503, "model_not_ready", "the engine has not loaded its models yet", {
        "Retry-After": "1",
      });
    return m;
  };
  app.get("/models", gate, async (c) => c.json({ models: await served().list() }));
  app.post("/models/:name/activate", gate, limit, async (c) => {
    const m = served();
    const request = await bodyOf(c, activateRequestSchema);
    return c.json(await m.activate(c.req.param("name"), request));
  });
  app.post("/models/:name/retrain", gate, limit, async (c) => {
    const m = served();
    const request = await bodyOf(c, retrainRequestSchema, true);
    return c.json(await m.retrain(c.req.param("name"), request), 202);
  });
  app.get("/models/:name/retrains/:version", gate, async (c) =>
    c.json(await served().report(c.req.param("name"), c.req.param("version"))),
  );
}
