// The console-token form (CONSOLE_TOKEN without sign-in), folded, on every page whose forms act, and its "Token stored".
import type { Context } from "hono";
import { createContext, useContext } from "hono/jsx";
import type { HtmlEscapedString } from "hono/utils/html";

/** The query `POST /console-token` adds to the page it goes back to: `?token=stored`. */
export const TOKEN_STORED = { key: "token", value: "stored" } as const;

const StoredContext = createContext(false);

/** The page with "was the token just stored" in reach of its token form. */
export function withTokenStored(
  c: Context,
  element: HtmlEscapedString | Promise<HtmlEscapedString>,
): HtmlEscapedString {
  const stored = c.req.query(TOKEN_STORED.key) === TOKEN_STORED.value;
  return (
    <StoredContext.Provider value={stored}>
      {element as unknown as HtmlEscapedString}
    </StoredContext.Provider>
  ) as unknown as HtmlEscapedString;
}

/** `back` (a path of this console, see routes.tsx's `returnPath`) with `?token=stored` added. */
export function withStoredMark(back: string): string {
  const url = new URL(back, "http://console.invalid");
  url.searchParams.set(TOKEN_STORED.key, TOKEN_STORED.value);
  return url.pathname + url.search;
}

/**
 * Sets the console token cookie (`POST /console-token`), then goes back to `returnTo`, where it
 * says the token was stored (`role="status"`, focused on load by the console's script): the
 * page looks the same otherwise, and nothing else would tell the operator it worked.
 */
export function ConsoleTokenForm(props: {
  returnTo: string;
  /** The fold's label (default "Console token"). */
  summary?: string;
  /** The token field's id, unique on its page (default `console-token`). */
  id?: string;
}) {
  const id = props.id ?? "console-token";
  const stored = useContext(StoredContext);
  return (
    <>
      {stored ? (
        <p class="done" role="status" id={`${id}-stored`} tabindex={-1}>
          Token stored: this page's forms can act now (send a refused form again).
        </p>
      ) : null}
      <details>
        <summary>{props.summary ?? "Console token"}</summary>
        <form method="post" action="/console-token" class="token">
          <input type="hidden" name="return" value={props.returnTo} />
          <label for={id}>Token (kept in a cookie for this site)</label>
          <input id={id} name="token" type="password" required autocomplete="off" />
          <button type="submit">Use token</button>
        </form>
      </details>
    </>
  );
}
