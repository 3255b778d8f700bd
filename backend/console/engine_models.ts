// Reads the engine's served models (`GET ENGINE_URL/models`) server-side for the console's Health page.
import * as v from "valibot";
import { modelsResponseSchema, type ServedModel } from "../../contracts/models_api.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";

// Any code: an engine newer than this backend may answer with one we do not list.
const errorBodySchema = v.object({ error: v.string(), message: v.string() });

/** The engine's models, or why the page cannot show them. */
export type EngineModels = { models: ServedModel[] } | { error: string };

export interface EngineModelsOptions {
  engineUrl: string;
  /** The engine's `ADMIN_TOKEN`: `GET /models` needs it when the engine has one. */
  adminToken?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Returns a reader of the engine's `GET /models`, parsed with the contract's schema. It never
 * throws: an unreachable engine, a deadline passed, an error answer or a body that breaks the
 * contract come back as `{ error }` in words for the page.
 *
 * @example const models = await createEngineModelsReader({ engineUrl })(); // { models: [...] }
 */
export function createEngineModelsReader(options: EngineModelsOptions) {
  const { engineUrl, adminToken, timeoutMs = 2000 } = options;
  const fetcher = options.fetch ?? containedFetch;
  const headers: Record<string, string> = { accept: "application/json" };
  if (adminToken) headers.authorization = `Bearer ${adminToken}`;

  return async function readEngineModels(): Promise<EngineModels> {
    try {
      // The deadline covers the body too: a stalled answer aborts its read.
      const res = await fetcher(new URL("/models", engineUrl), {
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body: unknown = await res.json().catch(() => undefined);
      if (res.status !== 200) return { error: describeError(res.status, body) };
      const parsed = v.safeParse(modelsResponseSchema, body);
      if (!parsed.success) {
        const issue = parsed.issues[0];
        return {
          error: `unexpected answer from the engine: ${v.getDotPath(issue) ?? "(body)"}: ${issue.message}`,
        };
      }
      return { models: parsed.output.models };
    } catch (error) {
      const e = error as Error;
      return {
        error:
          e.name === "TimeoutError"
            ? `no answer from the engine within ${timeoutMs} ms`
            : `engine unreachable: ${e.message}`,
      };
    }
  };
}

function describeError(status: number, body: unknown): string {
  const parsed = v.safeParse(errorBodySchema, body);
  const detail = parsed.success ? `${parsed.output.error}: ${parsed.output.message}` : "no details";
  if (status === 401)
    return `the engine refused the admin token (HTTP 401, ${detail}); set ADMIN_TOKEN`;
  if (status === 404) return `the engine has no model operations API (HTTP 404, ${detail})`;
  return `the engine answered HTTP ${status} (${detail})`;
}

export type EngineModelsReader = ReturnType<typeof createEngineModelsReader>;
