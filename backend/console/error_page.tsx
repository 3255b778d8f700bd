// The console's page for a request that ended in an error (the database down, a body too large): its status and words, the navigation, the way to the Health page.
import type { Context } from "hono";
import { html } from "hono/html";
import type { HttpError } from "../../contracts/error.ts";
import { Layout, SECURITY_HEADERS } from "./layout.tsx";
import { withViewer } from "./viewer.tsx";

/** Paths that are no console page: the API, probes, sign-in, files, the simulator, the live stream. */
const NOT_A_PAGE = /^\/(api|health|auth|assets|data)(\/|$)|^\/(events|signin|signout)$/;

/** The page's title by the error's code, else by its status. */
const TITLES: Record<string, string> = {
  database_unavailable: "Database unavailable",
  payload_too_large: "Too much sent",
  too_many_attempts: "Too many attempts",
  host_not_allowed: "Not this address",
  internal_error: "Internal error",
};

function titleOf(error: HttpError): string {
  if (Object.hasOwn(TITLES, error.code)) return TITLES[error.code];
  if (error.status === 401) return "Sign-in needed";
  if (error.status === 403) return "Not allowed";
  if (error.status === 404) return "Not found";
  return error.status >= 500 ? "Not available" : "Not accepted";
}

/**
 * Whether an error on this request is answered as a console page rather than the API's JSON: a
 * console path, asked for by a browser (`text/html`) or anything not asking for JSON or events.
 */
export function wantsConsolePage(c: Context): boolean {
  if (NOT_A_PAGE.test(c.req.path)) return false;
  const accept = c.req.header("accept") ?? "";
  return /text\/html/i.test(accept) || !/json|text\/event-stream/i.test(accept);
}

/**
 * The error as a console page: its status and headers (`Retry-After` kept), an h1, the message
 * (focused by the script), the navigation and a link to the Health page, which still answers
 * when the database does not. Nothing on it reads the database (no silence banner).
 *
 * @example app.onError((error, c) => wantsConsolePage(c) ? consoleErrorPage(c, error) : c.json(...));
 */
export async function consoleErrorPage(c: Context, error: HttpError): Promise<Response> {
  const title = titleOf(error);
  const page = (
    <Layout title={title} section="error">
      <h1>{title}</h1>
      <p role="alert" id="message" tabindex={-1} data-error={error.code}>
        {error.message}
      </p>
      {error.headers["Retry-After"] ? (
        <p>This is likely to pass: reload the page in a few seconds.</p>
      ) : null}
      <p>
        The <a href="/status">Health page</a> says what the console can reach now.
      </p>
    </Layout>
  );
  for (const [k, v] of Object.entries({ ...SECURITY_HEADERS, ...error.headers })) c.header(k, v);
  c.header("Cache-Control", "no-store");
  return c.html(html`<!doctype html>${await withViewer(c, page)}`, error.status as 500);
}
