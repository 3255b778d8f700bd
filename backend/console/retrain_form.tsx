// The Health page's "Retrain now" form (admin) and the notice shown once a run started.
import type { ServedModel } from "../../contracts/models_api.ts";
import { NameField } from "./name_field.tsx";
import { useViewer } from "./viewer.tsx";

/**
 * Asks the engine to retrain the model now (`POST /models/{name}/retrain`, the console route
 * forwards it), with an optional reason; admins only, and only where the engine can retrain the
 * model (it lists `retrain`, registry layout). A run in progress is said in the cell beside it;
 * the button stays, and the engine answers "already running".
 */
export function RetrainForm(props: { model: ServedModel }) {
  const m = props.model;
  const viewer = useViewer();
  if (!m.retrain || m.layout === "flat" || viewer.role !== "admin") return null;
  const id = `retrain-${m.name}`;
  return (
    <form
      method="post"
      action={`/models/${encodeURIComponent(m.name)}/retrain`}
      class="retrain"
      data-retrain-form={m.name}
    >
      {/* Each model has this form: the fields' names say which, after the words on screen. */}
      <label for={`${id}-reason`}>
        Why (optional)<span class="vh"> (retrain {m.name})</span>
      </label>
      <input id={`${id}-reason`} name="reason" maxlength={1000} />
      <NameField id={`${id}-by`} which={<span class="vh"> (retrain {m.name})</span>} optional />
      {/* The name starts with the words on screen (a speech user says "Retrain now"). */}
      <button type="submit" aria-label={`Retrain now: ${m.name}`}>
        Retrain now
      </button>
    </form>
  );
}

/** Said above the models after a run was started (`/status?retrain=<model>`). */
export function RetrainNotice(props: { model: string }) {
  return (
    <p id="retrain-notice" role="status" class="done" tabindex={-1}>
      Retraining of <code>{props.model}</code> started; the Retraining column shows it running until
      the promotion gate decides (reload to see the outcome).
    </p>
  );
}
