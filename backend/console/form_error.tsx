// A refused form's message, shown beside the form it refused (which keeps what was typed), in the words of the form's labels.
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";

/** A refused form submission: why, and its fields as typed, to be shown again in that form. */
export interface Refusal {
  message: string;
  values: Record<string, string>;
  /** The API's key of the field the message is about (`by`, `ends_at`), when it names one. */
  field?: string;
}

/**
 * How a console form names the API's keys on screen: `{ by: "Your name" }`. A key also covers
 * the keys under it (`matchers.sensors` covers `matchers.sensors.2`).
 */
export type FieldLabels = Record<string, string>;

/**
 * Said on the console instead of the API's "Authorization: Bearer" advice: what to do on the page.
 * The console-token form is on every page whose forms act, under this summary.
 */
export const TOKEN_NEEDED =
  "this console asks for its token before anyone acts. Open “Console token” on this page, enter the token and choose “Use token”, then send this form again.";

function knownKey(key: string, labels: FieldLabels): string | undefined {
  for (let k = key; k !== ""; k = k.slice(0, Math.max(0, k.lastIndexOf(".")))) {
    if (Object.hasOwn(labels, k)) return k;
  }
  return undefined;
}

/**
 * An API refusal as a console form shows it: each quoted key it names (`'ends_at'`) replaced by
 * that field's label (`“Ends”`), and the first such key kept as `field` so the page can mark that
 * control invalid. The missing console token gets plain words: the API's message names an HTTP
 * header an operator has no use for. The API's own JSON answers keep their keys.
 *
 * @example refusalFor(error, { by: "Your name" }) // { message: "“Your name” must be a name of 1..200 characters", field: "by" }
 */
export function refusalFor(
  error: HttpError,
  labels: FieldLabels,
): { message: string; field?: string } {
  // The challenge header marks the one 401 that a token fixes (console_auth.ts), whatever its words.
  if (error.code === "unauthorized" && error.headers["WWW-Authenticate"]) {
    return { message: TOKEN_NEEDED };
  }
  let field: string | undefined;
  const message = error.message.replace(/'([\w.]+)'/g, (quoted, key: string) => {
    const known = knownKey(key, labels);
    if (known === undefined) return quoted;
    field ??= known;
    return `“${labels[known]}”`;
  });
  return { message, field };
}

/**
 * The attributes that tie a control to the message refusing it: `aria-invalid` and the message
 * in its description (after any hint it already has). Spread onto the control.
 *
 * @example <input id="ack-by" {...invalidIf(refused.field === "by", "ack-error")} />
 */
export function invalidIf(
  refused: boolean,
  errorId: string,
  hint?: string,
): { "aria-invalid"?: "true"; "aria-describedby"?: string } {
  if (!refused) return hint ? { "aria-describedby": hint } : {};
  return { "aria-invalid": "true", "aria-describedby": hint ? `${errorId} ${hint}` : errorId };
}

/**
 * A refusal's message as a sentence, then what came of it: the API's messages end without a full
 * stop, so one is added before `outcome` (never doubled after one of their own).
 *
 * @example refusalSentence(new HttpError(403, "forbidden", "vic has viewer"), "Nothing changed.") // "vic has viewer. Nothing changed."
 */
export function refusalSentence(error: { message: string }, outcome: string): string {
  return `${error.message.replace(/([^.!?])$/, "$1.")} ${outcome}`;
}

/**
 * The message of a refused form, announced (`role="alert"`) where the form is: the Incident
 * page's acknowledgement and verdict, a Quality row's mute, a silence's expiry. The console's
 * script moves the focus to it when the page loads (`tabindex="-1"` lets it take the focus
 * without adding a Tab stop), so a keyboard user starts beside the form, not at the page's top.
 *
 * @example <FormError id="verdict-error" prefix="Nothing was recorded: " message={error} />
 */
export function FormError(props: { id: string; prefix?: string; message: string }) {
  return (
    <p class="error" role="alert" id={props.id} tabindex={-1}>
      {props.prefix}
      {props.message}
    </p>
  );
}

/**
 * A console form's first schema problem as `400 invalid_request`, naming the field by its label.
 *
 * @example issueRefusal(parsed.issues[0], { by: "Your name" }) // "“Your name”: Invalid length..."
 */
export function issueRefusal(issue: v.BaseIssue<unknown>, labels: FieldLabels): HttpError {
  const key = v.getDotPath(issue) ?? "";
  const field = Object.hasOwn(labels, key) ? `“${labels[key]}”` : key;
  return new HttpError(400, "invalid_request", `${field}: ${issue.message}`);
}

/** A form field's text, or undefined when it was left blank (a blank field is not given). */
export function filledField(form: Record<string, unknown>, key: string): string | undefined {
  const value = form[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}
