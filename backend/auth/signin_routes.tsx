// Sign-in and sign-out for the console: the token form, the provider's link, and the session cookie's end.
import type { Context } from "hono";
import { Hono } from "hono";
import { html } from "hono/html";
import { HttpError } from "../../contracts/error.ts";
import { formBody } from "../_parse_body.ts";
import type { AuditRepository } from "../audit/audit_repository.ts";
import type { Auth } from "./auth.ts";
import { PAGE_HEADERS, safeNext } from "./auth.ts";

function SignInPage(props: { mode: Auth["mode"]; next: string; tokens: boolean; error?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Sign in · anomaly-stream</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/assets/console.css" />
      </head>
      <body data-section="signin">
        <main id="main">
          <h1>Sign in</h1>
          {props.error ? (
            <p id="signin-error" class="error" role="alert">
              {props.error}
            </p>
          ) : null}
          {props.mode === "none" ? (
            <p>
              This backend runs without sign-in (it only listens on this machine).{" "}
              <a href="/">Open the console</a>.
            </p>
          ) : null}
          {props.mode === "oidc" ? (
            <p>
              <a class="button" href={`/auth/login?next=${encodeURIComponent(props.next)}`}>
                Sign in with your company account
              </a>
            </p>
          ) : null}
          {props.mode !== "none" && props.tokens ? (
            <form method="post" action="/signin" class="signin">
              <input type="hidden" name="next" value={props.next} />
              <label for="signin-token">API token</label>
              <input
                id="signin-token"
                name="token"
                type="password"
                required
                autocomplete="off"
                maxlength={500}
                // A refusal or a notice (the session ended): the field is where to act, so the
                // page starts there, and its description is the message (no script needed).
                autofocus={props.error ? true : undefined}
                aria-invalid={props.error ? "true" : undefined}
                aria-describedby={props.error ? "signin-error" : undefined}
              />
              <button type="submit">Sign in</button>
            </form>
          ) : null}
        </main>
      </body>
    </html>
  );
}

/**
 * Mounted at `/`: `GET /signin?next=` (the page), `POST /signin` (token form: starts a session
 * for the token's name and role), `POST /signout` (ends the session). A sign-in form posted from
 * another site's page is refused (403 `cross_site`: no login CSRF) and logged, uncounted; wrong
 * tokens are rate-limited per address (429) and logged, successes are audited before their
 * session starts (an audit that fails signs nobody in).
 */
export function signInRoutes(options: {
  auth: Auth;
  audit: AuditRepository;
  now: () => number;
  /** The identity provider's end-session page, when signing out should continue there. */
  endSessionUrl?: () => Promise<string | undefined>;
}): Hono {
  const { auth, audit, now } = options;
  const app = new Hono();
  const tokens = auth.tokens !== undefined;

  const render = async (c: Context, next: string, status = 200, error?: string) => {
    for (const [k, v] of Object.entries(PAGE_HEADERS)) c.header(k, v);
    const body = await (<SignInPage mode={auth.mode} next={next} tokens={tokens} error={error} />);
    return c.html(html`<!doctype html>${body}`, status as 200);
  };

  app.get("/signin", (c) =>
    render(
      c,
      safeNext(c.req.query("next")),
      200,
      c.req.query("ended") === "1"
        ? "Your session ended, so what you sent was not recorded: sign in again, then send it once more."
        : undefined,
    ),
  );

  app.post("/signin", async function signInWithToken(c) {
    // Another site's page can make a visitor's browser post this form: refused before its body is
    // read and not counted as a failure, or any site could lock a visitor's address out.
    if (!auth.sameSite(c)) {
      auth.refused(c, "cross-site sign-in form");
      throw new HttpError(403, "cross_site", "sign in from this site's own sign-in page");
    }
    const form = await formBody(c);
    const next = safeNext(typeof form.next === "string" ? form.next : undefined);
    if (auth.mode === "none" || !auth.tokens) {
      return render(c, next, 400, "Sign-in with an API token is not enabled here.");
    }
    const token = typeof form.token === "string" ? form.token.trim() : "";
    // Only a token that was sent and is wrong counts towards the limit: an empty form tried no
    // secret. A right one signs in whatever its address did before (behind a reverse proxy every
    // person shares one).
    const found = token ? await auth.tokens.find(token) : undefined;
    if (!found) {
      try {
        auth.checkLimit(c);
      } catch (error) {
        if (error instanceof HttpError) {
          c.header("Retry-After", error.headers?.["Retry-After"] ?? "60");
          return render(c, next, 429, error.message);
        }
        throw error;
      }
      if (token) auth.failed(c, "token form");
      else auth.refused(c, "token form without a token");
      return render(c, next, 401, "That token is not valid (unknown, removed or expired).");
    }
    const identity = {
      subject: `token:${found.name}`,
      name: found.name,
      role: found.role,
      method: "token" as const,
    };
    // Recorded before the session starts: a sign-in the audit cannot record sets no cookie, so
    // nobody is signed in unaudited (the error answer would otherwise carry the session).
    await audit.record({
      action: "session.signin",
      target: `session:${identity.subject}`,
      actor: identity,
      at: new Date(now()),
    });
    await auth.startSession(c, identity, found);
    return c.redirect(next, 303);
  });

  app.post("/signout", async function signOut(c) {
    if (!auth.sameSite(c)) {
      throw new HttpError(403, "cross_site", "sign out from this site's own pages");
    }
    const wasOidc = auth.identity(c)?.method === "oidc";
    await auth.endSession(c);
    const provider = wasOidc ? await options.endSessionUrl?.() : undefined;
    return c.redirect(provider ?? "/signin", 303);
  });

  return app;
}
