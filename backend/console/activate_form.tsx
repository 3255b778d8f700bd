// The Health page's Activate form (admin), its refusal beside it with what was typed, and the notice once a version is active.
import type { ServedModel } from "../../contracts/models_api.ts";
import { FormError, invalidIf, type Refusal } from "./form_error.tsx";
import { NameField } from "./name_field.tsx";
import { useViewer } from "./viewer.tsx";

/** Said beside a version whose windows the active one's cannot carry over (`incompatible_versions`). */
export const OTHER_SENSORS = " (other sensors or window size)";

/** The checkbox's words, also in the refusal that asks for it. */
export const RESET_LABEL = "Start windows afresh";

/** An activation the backend or the engine refused: which model's form, why, what was typed. */
export interface ActivateRefusal extends Refusal {
  model: string;
}

/** The id of the refusal's message: the form's fields point at it (`aria-describedby`). */
const ERROR_ID = "activate-error";

/** The refusal's message, focused by the console's script when the page loads. */
export function ActivateError(props: { message: string }) {
  return <FormError id={ERROR_ID} prefix="Not activated: " message={props.message} />;
}

/** Whether the page shows `m`'s Activate form to the viewer (else a refusal is said at the top). */
export function showsActivateForm(m: ServedModel, role: string): boolean {
  return m.layout !== "flat" && m.versions.some((v) => v !== m.active_version) && role === "admin";
}

/**
 * Switches the model to another version through the backend (admin; the engine's hot swap). A
 * retrained candidate held for a person (`RETRAIN_PROMOTE=manual`) is preselected. When some
 * versions read other sensors (or windows of another size), they say so and a checkbox lets the
 * streams start afresh (`reset_windows`); the engine refuses such a version without it. Refused
 * (`refused`), the form says why above its fields and keeps what was typed.
 */
export function ActivateForm(props: { model: ServedModel; refused?: ActivateRefusal }) {
  const m = props.model;
  const viewer = useViewer();
  const others = m.versions.filter((v) => v !== m.active_version);
  if (m.layout === "flat" || others.length === 0) return <>–</>;
  if (viewer.role !== "admin") return <>needs the admin role</>;
  const refused = props.refused?.model === m.name ? props.refused : undefined;
  const typed = refused?.values ?? {};
  const ready = m.retrain?.last_promoted?.activated === false ? m.retrain.last_promoted : undefined;
  const chosen = others.includes(typed.version ?? "")
    ? typed.version
    : (ready?.candidate_version ?? others.at(-1));
  const incompatible = new Set(m.incompatible_versions ?? []);
  const id = `activate-${m.name}`;
  const invalid = (field: string) => invalidIf(refused?.field === field, ERROR_ID);
  return (
    <>
      {refused ? <ActivateError message={refused.message} /> : null}
      <form
        method="post"
        action={`/models/${encodeURIComponent(m.name)}/activate`}
        class="activate"
      >
        <label for={`${id}-version`}>Version</label>
        <select id={`${id}-version`} name="version" required {...invalid("version")}>
          {others.map((v) => (
            <option value={v} selected={v === chosen}>
              {v}
              {v === ready?.candidate_version ? " (retrained, ready)" : ""}
              {incompatible.has(v) ? OTHER_SENSORS : ""}
            </option>
          ))}
        </select>
        {/* Also when the engine asked for it of a version it did not list as such. */}
        {incompatible.size || refused?.field === "reset_windows" ? (
          <label for={`${id}-reset`}>
            <input
              id={`${id}-reset`}
              type="checkbox"
              name="reset_windows"
              value="true"
              checked={typed.reset_windows === "true"}
              {...invalid("reset_windows")}
            />{" "}
            {RESET_LABEL} (the version reads other sensors)
          </label>
        ) : null}
        <label for={`${id}-reason`}>Why</label>
        <input
          id={`${id}-reason`}
          name="reason"
          required
          maxlength={1000}
          value={typed.reason}
          {...invalid("reason")}
        />
        <NameField id={`${id}-by`} value={typed.by} invalid={invalid("by")} />
        <button type="submit" aria-label={`Activate the chosen version of ${m.name}`}>
          Activate
        </button>
      </form>
    </>
  );
}

/**
 * Said above the models after an activation (`/status?activated=<model>`), where the focus starts:
 * the version scoring now, as the engine lists it.
 */
export function ActivateNotice(props: { model: ServedModel; unchanged: boolean }) {
  const m = props.model;
  return (
    <p id="activate-notice" role="status" class="done" tabindex={-1}>
      {props.unchanged ? "Nothing to switch: " : "Activated: "}
      <code>{m.name}</code> scores with <code>{m.active_version}</code>
      {props.unchanged
        ? ", already active before."
        : " now; the Last activation column says who switched it, when and why."}
    </p>
  );
}
