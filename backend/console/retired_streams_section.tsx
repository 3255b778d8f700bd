// The streams operators retired (a line taken out of service), read from the database: shown on Now and Health whether or not the engine answers, each with its "Watch again" form.
import type { Retirement } from "../streams/retirement_repository.ts";
import { utc } from "./format.ts";
import { NameField } from "./name_field.tsx";
import { NotAllowed, useViewer } from "./viewer.tsx";

/**
 * "Retired streams", a section of its own: retirements are the database's, so an engine out of
 * reach hides none of them, and each can still be watched again. Nothing when none is in force.
 *
 * @example <RetiredStreamsSection retired={await retirements.list({ state: "in_force" })} />
 */
export function RetiredStreamsSection(props: { retired?: Retirement[] }) {
  const retired = props.retired ?? [];
  if (retired.length === 0) return null;
  return (
    <section aria-labelledby="retired-heading">
      <h2 id="retired-heading">Retired streams</h2>
      <p id="retired-summary">
        Taken out of service by an operator: their silence is no outage and pages nobody. A retired
        stream that sends again is watched again by itself.
      </p>
      <table id="retired-streams" aria-labelledby="retired-heading">
        <thead>
          <tr>
            <th scope="col">Stream</th>
            <th scope="col">Silent since</th>
            <th scope="col">Retired by</th>
            <th scope="col">Retired at</th>
            <th scope="col">Why</th>
            <th scope="col">Watch again</th>
          </tr>
        </thead>
        <tbody>
          {retired.map((r, i) => (
            <tr>
              <td>{r.stream_id}</td>
              <td>
                {r.last_accepted_at ? (
                  <time datetime={r.last_accepted_at}>{utc(r.last_accepted_at)}</time>
                ) : (
                  "not listed silent when retired"
                )}
              </td>
              <td>{r.retired_by}</td>
              <td>
                <time datetime={r.retired_at}>{utc(r.retired_at)}</time>
              </td>
              <td>{r.reason}</td>
              <td>
                <StreamForm
                  action={`/streams/${encodeURIComponent(r.stream_id)}/watch`}
                  id={`watch-${i}`}
                  stream={r.stream_id}
                  label="Watch again"
                  what="Watching a retired stream again"
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/**
 * A form acting on one stream (retire it, watch it again): a reason with its label, and the
 * person's name where nobody signs in. Viewers see why there is none. Every row has these
 * controls: each name says which stream and what for, after the words on screen.
 */
export function StreamForm(props: {
  action: string;
  id: string;
  stream: string;
  label: "Retire" | "Watch again";
  what: string;
}) {
  const viewer = useViewer();
  if (!viewer.canAct) return <NotAllowed what={props.what} />;
  const { id, stream, label } = props;
  const which = label === "Retire" ? `retire ${stream}` : `watch ${stream} again`;
  return (
    <form method="post" action={props.action} class="stream-form" aria-label={`${label} ${stream}`}>
      <label for={`${id}-reason`}>
        Why<span class="vh"> ({which})</span>
      </label>{" "}
      <input id={`${id}-reason`} name="reason" required maxlength={500} autocomplete="off" />{" "}
      <NameField id={`${id}-by`} which={<span class="vh"> ({which})</span>} />{" "}
      {/* The name starts with the words on screen (a speech user says "Retire"). */}
      <button type="submit" aria-label={`${label}: ${stream}`}>
        {label}
      </button>
    </form>
  );
}
