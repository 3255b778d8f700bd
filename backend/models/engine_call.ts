// One call to the engine's model operations API (ADMIN_TOKEN as bearer), its refusals translated into the backend's answers.
import * as v from "valibot";
import { ERROR_CODES, type ErrorCode, HttpError } from "../../contracts/error.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";

/**
 * An engine call that may have reached the engine but whose answer is missing: it timed out, the
 * connection was cut after it opened, or a success came back off the contract. The engine may
 * have acted. Answered as any unanswered call (`502 engine_unreachable`) unless the caller finds
 * out what happened (an activation reads `GET /models` back).
 */
export class EngineAnswerLost extends HttpError {
  constructor(message: string) {
    super(502, "engine_unreachable", message);
    this.name = "EngineAnswerLost";
  }
}

/**
 * Connection failures before anything was sent (undici's codes under Node): the engine received
 * nothing. Any other failure, a timeout included, may come after it did.
 */
const NOT_SENT = new Set([
  "ECONNREFUSED", // nothing listens there
  "ENOTFOUND", // the name does not resolve
  "EAI_AGAIN", // the resolver did not answer
  "EHOSTUNREACH", // no route to the host
  "ENETUNREACH", // no route to the network
  "UND_ERR_CONNECT_TIMEOUT", // the connection never opened
]);

/** Deno's fetch names no code: its cause says the connection never opened, or the name failed. */
const DENO_NOT_SENT = /client error \(Connect\)|dns error/;

const notSent = (error: unknown) => {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } })?.cause;
  return NOT_SENT.has(String(cause?.code)) || DENO_NOT_SENT.test(String(cause?.message));
};

export interface EngineCallOptions {
  engineUrl: string;
  /** The engine's `ADMIN_TOKEN`, when it has one. */
  adminToken?: string;
  fetch?: typeof fetch;
  timeoutMs: number;
}

/**
 * POSTs `body` to the engine's `path` and returns its answer parsed with `schema` when the status
 * is `ok`. The engine's refusals come back as the same status and code (404 model_not_found, 409
 * retrain_running, ...; a 5xx as 502); an engine that does not answer, refuses the backend's
 * bearer (its ADMIN_TOKEN is missing or wrong here: not the person's fault) or breaks the
 * contract is `502 engine_unreachable`, an {@link EngineAnswerLost} when the request may have
 * reached it.
 *
 * @example await postToEngine(o, "/models/pump/retrain", { by: "ana" }, 202, retrainResponseSchema);
 */
export function postToEngine<S extends v.GenericSchema>(
  o: EngineCallOptions,
  path: string,
  body: unknown,
  ok: number,
  schema: S,
): Promise<v.InferOutput<S>> {
  return callEngine(o, path, { method: "POST", body: JSON.stringify(body) }, ok, schema);
}

/**
 * GETs the engine's `path` and returns its `200` answer parsed with `schema`; refusals and an
 * unreachable engine as {@link postToEngine}'s.
 *
 * @example await getFromEngine(o, "/models/pump/retrains/2.3.0", retrainReportSchema);
 */
export function getFromEngine<S extends v.GenericSchema>(
  o: EngineCallOptions,
  path: string,
  schema: S,
): Promise<v.InferOutput<S>> {
  return callEngine(o, path, { method: "GET" }, 200, schema);
}

async function callEngine<S extends v.GenericSchema>(
  o: EngineCallOptions,
  path: string,
  request: { method: "GET" | "POST"; body?: string },
  ok: number,
  schema: S,
): Promise<v.InferOutput<S>> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (request.body !== undefined) headers["content-type"] = "application/json";
  if (o.adminToken) headers.authorization = `Bearer ${o.adminToken}`;
  let res: Response;
  try {
    res = await (o.fetch ?? containedFetch)(new URL(path, o.engineUrl), {
      ...request,
      headers,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (error) {
    const message = `the engine did not answer: ${(error as Error).message}`;
    if (notSent(error)) throw new HttpError(502, "engine_unreachable", message);
    throw new EngineAnswerLost(message);
  }
  const answer: unknown = await res.json().catch(() => undefined);
  if (res.status === 401 || res.status === 403) {
    throw new HttpError(
      502,
      "engine_unreachable",
      "the engine refused the backend's credentials: set ADMIN_TOKEN to the engine's ADMIN_TOKEN",
    );
  }
  if (res.status !== ok) {
    const e = answer as { error?: string; message?: string } | undefined;
    const code = (ERROR_CODES as readonly string[]).includes(e?.error ?? "")
      ? (e?.error as ErrorCode)
      : "engine_unreachable";
    throw new HttpError(
      res.status >= 500 ? 502 : res.status,
      code,
      `the engine refused: ${e?.message ?? `status ${res.status}`}`,
    );
  }
  const parsed = v.safeParse(schema, answer);
  if (!parsed.success) {
    // A success, cut short or off the contract: the engine did what it was asked.
    throw new EngineAnswerLost("the engine's answer broke the contract");
  }
  return parsed.output;
}
