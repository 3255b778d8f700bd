// Reading request bodies: a JSON body validated with valibot, or a form's fields; the first problem as a 400 `invalid_request`.
import type { Context, MiddlewareHandler } from "hono";
import type { BodyData, ParseBodyOptions } from "hono/utils/body";
import * as v from "valibot";
import { HttpError } from "../contracts/error.ts";

/**
 * Parses `input` (a parsed JSON body) with `schema`, or throws 400 `invalid_request` with one
 * sentence about the first problem: not an object, `'field' is required`, `'field' is not a field
 * of <what>`, `'field' must be an object`, or `'field' must be <the schema's message>`.
 *
 * @example parseBody(ackBodySchema, await c.req.json(), "an acknowledgement");
 */
export function parseBody<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  what: string,
): v.InferOutput<S> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new HttpError(400, "invalid_request", "the body must be a JSON object");
  }
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = v.getDotPath(issue) ?? "body";
  // An object's issue for one of its keys: missing, or one the schema does not know.
  if (issue.type === "object" || issue.type === "strict_object") {
    const known = issue.expected !== "never";
    if (!known) {
      throw new HttpError(400, "invalid_request", `'${path}' is not a field of ${what}`);
    }
    // Missing, or there but not an object (a nested object's field given as text).
    if (issue.input !== undefined) {
      throw new HttpError(400, "invalid_request", `'${path}' must be an object`);
    }
    throw new HttpError(400, "invalid_request", `'${path}' is required`);
  }
  throw new HttpError(400, "invalid_request", `'${path}' must be ${issue.message}`);
}

/** A body still arriving at its request's deadline (`bodyDeadline`). */
class BodyTimeoutError extends Error {
  override name = "BodyTimeoutError";
}

const timedOut = (message: string) => new HttpError(408, "request_timeout", message);

/** The deadline's error behind a failed read (a runtime may hand it on as the cause of its own). */
function bodyTimeout(error: unknown): BodyTimeoutError | undefined {
  if (error instanceof BodyTimeoutError) return error;
  const cause = (error as { cause?: unknown })?.cause;
  return cause instanceof BodyTimeoutError ? cause : undefined;
}

/**
 * Middleware: a request's body must have arrived `ms` after the request began, or its read fails
 * and the request is answered `408 request_timeout` ({@link bodyText}, {@link formBody}). Node's
 * own limit is five minutes and Deno has none, so a client that sends its headers and then
 * dribbles (or stalls) held a handler and its connection for that long, or for ever.
 */
export function bodyDeadline(ms: number): MiddlewareHandler {
  return async function bodyDeadlineMiddleware(c, next) {
    const body = c.req.raw.body;
    if (!body) return next();
    const reader = body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timed = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setTimeout(() => {
          controller.error(new BodyTimeoutError(`the body did not arrive within ${ms} ms`));
          reader.cancel().catch(() => {});
        }, ms);
      },
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            clearTimeout(timer);
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          clearTimeout(timer);
          controller.error(error);
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        return reader.cancel(reason);
      },
    });
    c.req.raw = new Request(c.req.raw, { body: timed, duplex: "half" } as RequestInit);
    try {
      await next();
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The request body as text, or 400 `body_incomplete` when it cannot be read to its end: the client
 * went mid-upload (an engine giving up on `ALERT_TIMEOUT_MS`, a flaky link). Its doing, answered
 * like any bad request and not logged as the backend's error (Node reads it as "aborted", Deno as
 * a `BadResource`). A body over its limit (413) passes as it is.
 *
 * @example const text = await bodyText(c.req);
 */
export async function bodyText(body: { text(): Promise<string> }): Promise<string> {
  try {
    return await body.text();
  } catch (error) {
    if (error instanceof HttpError || (error as Error)?.name === "BodyLimitError") throw error;
    const late = bodyTimeout(error);
    if (late) throw timedOut(late.message);
    throw new HttpError(
      400,
      "body_incomplete",
      "the client closed the connection before the body ended",
    );
  }
}

/**
 * A form body's fields (`c.req.parseBody(options)`), or 400 `invalid_request` when the body
 * cannot be read as the form its content type says (a broken multipart body, a wrong boundary):
 * the client's mistake, not an internal error. Other errors reading it (413 past the body limit)
 * pass as they are.
 *
 * @example const form = await formBody(c); const note = typeof form.note === "string" ? form.note : "";
 */
export async function formBody<O extends Partial<ParseBodyOptions> = Record<never, never>>(
  c: Context,
  options?: O,
): Promise<BodyData<O>> {
  try {
    return await c.req.parseBody<O, BodyData<O>>(options);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    const late = bodyTimeout(error);
    if (late) throw timedOut(late.message);
    throw new HttpError(400, "invalid_request", "the body is not a form that can be read");
  }
}
