// The console-token form (CONSOLE_TOKEN without sign-in), folded, on every page whose forms act, its "Token stored", and what a refused form had typed, carried through it.
import type { Context } from "hono";
import { createContext, useContext } from "hono/jsx";
import type { HtmlEscapedString } from "hono/utils/html";

/** The query `POST /console-token` adds to the page it goes back to: `?token=stored`. */
export const TOKEN_STORED = { key: "token", value: "stored" } as const;

/**
 * What a refused form had typed rides in the token form's way back, under `kept.<form>.<field>`
 * (`kept.ack.note`): `POST /console-token` goes back to that page, whose form is filled in again,
 * so the token costs nothing typed. The query, not a cookie: the way back is all that form sends on.
 */
const KEPT = "kept.";

/**
 * The longest way back that carries what was typed: the browser sends it again (the page's own
 * URL, then its `Referer`) in headers that Node refuses past 16 KiB in all. Past it, the fold says
 * to copy the text first.
 */
export const KEPT_MAX_CHARS = 6000;

/** The token form's state on one page: was the token just stored, and what it carried back. */
interface TokenPageState {
  stored: boolean;
  /** The page's `kept.*` query pairs, as they came. */
  kept: [string, string][];
}

const StoredContext = createContext<TokenPageState>({ stored: false, kept: [] });

/** The page with "was the token just stored", and what its way back carried, in reach of its forms. */
export function withTokenStored(
  c: Context,
  element: HtmlEscapedString | Promise<HtmlEscapedString>,
): HtmlEscapedString {
  const stored = c.req.query(TOKEN_STORED.key) === TOKEN_STORED.value;
  const query = new URL(c.req.url).searchParams;
  const kept = [...query].filter(([key]) => key.startsWith(KEPT));
  return (
    <StoredContext.Provider value={{ stored, kept }}>
      {element as unknown as HtmlEscapedString}
    </StoredContext.Provider>
  ) as unknown as HtmlEscapedString;
}

/** A refused form's fields as typed, to carry through the token form: `{ form: "ack", values }`. */
export interface KeepTyped {
  /** Which form of the page, as its `useKept` names it (`ack`, `verdict`, `expire-<id>`). */
  form: string;
  values: Record<string, string | readonly string[] | undefined>;
}

/**
 * What the token form carried back for `form` (its fields, each with every value given, in
 * order), or undefined when it carried nothing for it. Fill the form in with it when the page has
 * no refusal of its own to show.
 *
 * @example const kept = useKept("ack"); <textarea>{kept?.note?.[0] ?? ""}</textarea>
 */
export function useKept(form: string): Record<string, string[]> | undefined {
  const prefix = `${KEPT}${form}.`;
  const pairs = useContext(StoredContext).kept.filter(([key]) => key.startsWith(prefix));
  if (pairs.length === 0) return undefined;
  const values: Record<string, string[]> = {};
  for (const [key, value] of pairs) {
    const field = key.slice(prefix.length);
    if (Object.hasOwn(values, field)) values[field].push(value);
    else values[field] = [value];
  }
  return values;
}

/** {@link useKept} with each field's first value: for forms of text fields only. */
export function useKeptText(form: string): Record<string, string> | undefined {
  const kept = useKept(form);
  return kept && Object.fromEntries(Object.entries(kept).map(([k, v]) => [k, v[0]]));
}

/**
 * `returnTo` carrying `keep`'s fields (or, without one, what the page's own way back carried: a
 * token refused sends the person back there), or undefined when that would be too long to carry.
 */
function wayBack(returnTo: string, keep: KeepTyped | undefined, carried: [string, string][]) {
  const url = new URL(returnTo, "http://console.invalid");
  const pairs: [string, string][] = keep
    ? Object.entries(keep.values).flatMap(([field, value]) =>
        [value ?? []].flat().map((v): [string, string] => [`${KEPT}${keep.form}.${field}`, v]),
      )
    : carried;
  for (const [key, value] of pairs) if (value !== "") url.searchParams.append(key, value);
  const back = url.pathname + url.search;
  return back.length <= KEPT_MAX_CHARS ? back : undefined;
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
  /** A refused form's fields as typed, carried back to `returnTo` and filled in again there. */
  keep?: KeepTyped;
  /** The fold's label (default "Console token"). */
  summary?: string;
  /** The token field's id, unique on its page (default `console-token`). */
  id?: string;
}) {
  const id = props.id ?? "console-token";
  const { stored, kept } = useContext(StoredContext);
  const back = wayBack(props.returnTo, props.keep, kept);
  return (
    <>
      {stored ? (
        <p class="done" role="status" id={`${id}-stored`} tabindex={-1}>
          {kept.length > 0
            ? "Token stored: this page's forms can act now (the refused form is filled in as you typed it: send it again)."
            : "Token stored: this page's forms can act now (send a refused form again)."}
        </p>
      ) : null}
      <details>
        <summary>{props.summary ?? "Console token"}</summary>
        <form method="post" action="/console-token" class="token">
          {back === undefined ? (
            <p class="hint" id={`${id}-long`}>
              What you typed is too long to carry through this form: copy it before you use the
              token, then paste it into the form again.
            </p>
          ) : null}
          <input type="hidden" name="return" value={back ?? props.returnTo} />
          <label for={id}>Token (kept in a cookie for this site)</label>
          <input id={id} name="token" type="password" required autocomplete="off" />
          <button type="submit">Use token</button>
        </form>
      </details>
    </>
  );
}
