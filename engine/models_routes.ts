// The engine's model operations API: GET /models, POST /models/{name}/activate, behind ADMIN_TOKEN.
import type { Hono } from "hono";
import * as v from "valibot";
import { HttpError } from "../contracts/error.ts";
import { activateRequestSchema } from "../contracts/models_api.ts";
import type { ModelActivation } from "./model_activation.ts";
import { adminGate } from "./roles/role_shell.ts";

/**
 * Mounts the operations routes on `app`. A body that is not JSON answers `400 invalid_json`, one
 * that breaks the contract `400 invalid_request` naming the field; the activation's own answers
 * are {@link ModelActivation.activate}'s. Nothing changes on any 4xx.
 */
export function mountModelRoutes(
  app: Hono,
  models: () => ModelActivation | undefined,
  adminToken?: string,
): void {
  const gate = adminGate(adminToken);
  const served = () => {
    const m = models();
    if (!m)
      throw new HttpError(503, "model_not_ready", "the engine has not loaded its models yet", {
        "Retry-After": "1",
      });
    return m;
  };
  app.get("/models", gate, async (c) => c.json({ models: await served().list() }));
  app.post("/models/:name/activate", gate, async (c) => {
    const m = served();
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HttpError(400, "invalid_json", "the body must be a JSON object");
    }
    const parsed = v.safeParse(activateRequestSchema, body);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const field = v.getDotPath(issue) ?? "(body)";
      throw new HttpError(400, "invalid_request", `${field}: ${issue.message}`);
    }
    return c.json(await m.activate(c.req.param("name"), parsed.output));
  });
}
