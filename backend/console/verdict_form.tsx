// The Incident page's verdict section: the current verdict, the ones it superseded, and the form to give one.
import type { IncidentDetail, Verdict, VerdictKind } from "../incidents/incident_types.ts";
import { VERDICTS } from "../incidents/incident_types.ts";
import { useKeptText } from "./console_token_form.tsx";
import { FormError, invalidIf } from "./form_error.tsx";
import { utc } from "./format.ts";
import { NameField } from "./name_field.tsx";
import { NotAllowed, useViewer } from "./viewer.tsx";

/** How the console names each verdict. */
export const VERDICT_LABELS: Record<VerdictKind, string> = {
  true_positive: "true positive",
  false_positive: "false positive",
  maintenance: "maintenance",
  sensor_fault: "sensor fault",
};

/** The label of an incident's current verdict, or "none yet". */
export function verdictLabel(verdict: Verdict | null): string {
  return verdict ? VERDICT_LABELS[verdict.verdict] : "none yet";
}

/**
 * The verdict form's fields as the verdict API's body: only string fields are taken, a missing
 * required one is blank (so the message says what it must be), and an optional one left blank is
 * left out rather than stored as an empty text.
 */
export function verdictFromForm(form: Record<string, unknown>): Record<string, string> {
  const field = (key: string) => (typeof form[key] === "string" ? (form[key] as string) : "");
  const out: Record<string, string> = { verdict: field("verdict"), by: field("by") };
  for (const key of ["cause", "note"]) if (field(key).trim() !== "") out[key] = field(key);
  return out;
}

/** A verdict in a sentence; who, the cause and the note isolated, so none reorders the time. */
function VerdictText(props: { verdict: Verdict }) {
  const v = props.verdict;
  return (
    <>
      <strong data-verdict={v.verdict}>{VERDICT_LABELS[v.verdict]}</strong> by{" "}
      <bdi class="who">{v.by}</bdi> at <time datetime={v.at}>{utc(v.at)}</time>
      {v.cause ? (
        <>
          {" · cause: "}
          <bdi class="cause">{v.cause}</bdi>
        </>
      ) : null}
      {v.note ? (
        <>
          {" · "}
          <bdi class="note">{v.note}</bdi>
        </>
      ) : null}
    </>
  );
}

/** The section shown beside the acknowledgement; `error` is the last submission's problem. */
export function VerdictSection(props: {
  incident: IncidentDetail;
  error?: string;
  /** The API's key of the field `error` is about (`verdict`, `by`), marked invalid. */
  errorField?: string;
  /** What was typed into the refused form, shown again. */
  values?: Record<string, string>;
  /** The page follows this form's recorded verdict: said, and focused by the console's script. */
  done?: boolean;
}) {
  // Carried back through the token form: the form filled in as it was typed when refused.
  const kept = useKeptText("verdict");
  const typed = props.values ?? kept ?? {};
  const invalid = (key: string) =>
    invalidIf(props.error !== undefined && props.errorField === key, "verdict-error");
  const { incident } = props;
  const earlier = incident.verdicts.slice(0, -1).reverse();
  const viewer = useViewer();
  return (
    <section aria-labelledby="verdict-heading">
      <h2 id="verdict-heading">Verdict</h2>
      {props.error ? (
        <FormError id="verdict-error" prefix="Nothing was recorded: " message={props.error} />
      ) : props.done ? (
        <p id="verdict-done" role="status" class="done" tabindex={-1}>
          Verdict recorded.
        </p>
      ) : null}
      <p id="verdict-state" data-verdict={incident.verdict?.verdict ?? "none"}>
        {incident.verdict ? <VerdictText verdict={incident.verdict} /> : "No verdict yet."}
      </p>
      {earlier.length > 0 ? (
        <details class="verdict-history">
          <summary>
            {earlier.length} earlier verdict{earlier.length === 1 ? "" : "s"}, newest first
          </summary>
          <ol>
            {earlier.map((v) => (
              <li>
                <VerdictText verdict={v} />
              </li>
            ))}
          </ol>
        </details>
      ) : null}
      {viewer.canAct ? (
        <form method="post" action={`/incidents/${incident.incident_id}/verdict`} class="verdict">
          <label for="verdict-kind">{incident.verdict ? "Change the verdict to" : "Verdict"}</label>
          <select id="verdict-kind" name="verdict" required {...invalid("verdict")}>
            <option value="">Choose…</option>
            {VERDICTS.map((kind) => (
              <option value={kind} selected={typed.verdict === kind}>
                {VERDICT_LABELS[kind]}
              </option>
            ))}
          </select>
          <label for="verdict-cause">Cause (optional)</label>
          <input
            id="verdict-cause"
            name="cause"
            maxlength={500}
            value={typed.cause}
            {...invalid("cause")}
          />
          <label for="verdict-note">Note (optional)</label>
          <textarea id="verdict-note" name="note" maxlength={2000} rows={2} {...invalid("note")}>
            {typed.note ?? ""}
          </textarea>
          <NameField id="verdict-by" value={typed.by} invalid={invalid("by")} />
          <button type="submit">Record verdict</button>
        </form>
      ) : (
        <NotAllowed what="Giving a verdict" />
      )}
    </section>
  );
}
