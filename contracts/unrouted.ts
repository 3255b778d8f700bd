// What both services answer a request no route serves: 405 with Allow when the path has routes
// for other methods, else 404.
import type { Hono, NotFoundHandler } from "hono";
import { HttpError } from "./error.ts";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The methods `app` routes `path` for (HEAD comes with GET), middleware mounted for every
 * method aside. Hono's router holds each handler with the route it was registered by.
 */
export function routedMethods(app: Hono, path: string): string[] {
  const allowed: string[] = [];
  for (const method of METHODS) {
    const [matched] = app.router.match(method, path);
    if (matched.some(([[, route]]) => route.method === method)) allowed.push(method);
  }
  if (allowed.includes("GET")) allowed.splice(1, 0, "HEAD");
  return allowed;
}

/**
 * The refusal of an unrouted request: `405 method_not_allowed` naming the allowed methods (and
 * sending them as `Allow`) when the path is routed for others, else `404 not_found`.
 */
export function unrouted(app: Hono, method: string, path: string): HttpError {
  const allowed = routedMethods(app, path);
  const asked = method === "HEAD" ? "GET" : method;
  if (allowed.length > 0 && !allowed.includes(asked)) {
    return new HttpError(
      405,
      "method_not_allowed",
      `${method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`,
      { Allow: allowed.join(", ") },
    );
  }
  return new HttpError(404, "not_found", `no route ${method} ${path}`);
}

/** `app.notFound(answerUnrouted(app))`: answers `unrouted`'s refusal as the JSON error body. */
export function answerUnrouted(app: Hono): NotFoundHandler {
  return (c) => {
    const refusal = unrouted(app, c.req.method, c.req.path);
    return c.json(refusal.body, refusal.status as 404, refusal.headers);
  };
}
