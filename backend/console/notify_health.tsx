// The Health page's Notifications section: each route's outbox counts and the latest dead letters, each with a Re-send form (admin).
import type { NotifyStatus } from "../notify/notification_dispatcher.ts";
import { utc } from "./format.ts";
import { NameField } from "./name_field.tsx";
import { useViewer } from "./viewer.tsx";

/** What the section is given: the status, why it could not be read, or null when no routes exist. */
export type NotifyHealthStatus = NotifyStatus | { error: string } | null;

function duration(ms: number | null): string {
  if (ms === null) return "–";
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["min", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `every ${ms / size} ${unit}`;
  }
  return `every ${ms} ms`;
}

function Routes(props: { status: NotifyStatus }) {
  const { status } = props;
  const counts = new Map(status.routes.map((r) => [r.route, r]));
  const names = [
    ...status.configured.map((r) => r.name),
    ...status.routes
      .map((r) => r.route)
      .filter((n) => !status.configured.some((c) => c.name === n)),
  ];
  const hours = Math.round(status.window_ms / 3_600_000);
  return (
    <table id="notify-routes" class="counts">
      <caption>
        Notification routes and their outbox (delivered, dead, silenced, stale and superseded over
        the last {hours} h)
      </caption>
      <thead>
        <tr>
          <th scope="col">Route</th>
          <th scope="col">Format</th>
          <th scope="col">Sends to</th>
          <th scope="col">Reminders</th>
          <th scope="col">Pending</th>
          <th scope="col">Delivered</th>
          <th scope="col">Dead letters</th>
          <th scope="col">Silenced</th>
          <th scope="col">
            <abbr title="Events older than the route's max_age when planned (a backfill of old data), recorded but not sent">
              Stale
            </abbr>
          </th>
          <th scope="col">
            <abbr title="Reminders replaced by a newer one, or whose incident resolved, before they were sent">
              Superseded
            </abbr>
          </th>
          <th scope="col">Last delivered</th>
        </tr>
      </thead>
      <tbody>
        {names.map((name) => {
          const route = status.configured.find((c) => c.name === name);
          const c = counts.get(name);
          return (
            <tr
              data-route={name}
              data-pending={c?.pending ?? 0}
              data-delivered={c?.delivered ?? 0}
              data-dead={c?.dead ?? 0}
            >
              <th scope="row">
                <code>{name}</code>
              </th>
              <td>{route?.format ?? "not in this backend's NOTIFY_CONFIG"}</td>
              <td>{route ? <code>{route.target}</code> : "–"}</td>
              <td>{duration(route?.repeat_every_ms ?? null)}</td>
              <td class="num">{c?.pending ?? 0}</td>
              <td class="num">{c?.delivered ?? 0}</td>
              <td class="num">{c?.dead ?? 0}</td>
              <td class="num">{c?.silenced ?? 0}</td>
              <td class="num">{c?.stale ?? 0}</td>
              <td class="num">{c?.superseded ?? 0}</td>
              <td>{c?.last_delivered_at ? utc(c.last_delivered_at) : "–"}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

type DeadLetter = NotifyStatus["dead_letters"][number];

/**
 * Sends a dead letter again (`POST /notifications/{message_id}/retry`, the console route does
 * what the API does): admins only, with an optional reason (and a name without sign-in).
 */
/** What a dead letter was about, in a few words: an incident or a feed condition, by short id. */
function subjectOf(d: DeadLetter): string {
  return d.incident_id === null
    ? `feed condition ${(d.condition_id ?? "").slice(0, 8)}`
    : `incident ${d.incident_id.slice(0, 8)}`;
}

function ResendForm(props: { letter: DeadLetter }) {
  const d = props.letter;
  const viewer = useViewer();
  if (viewer.role !== "admin") return null;
  const id = `resend-${d.message_id}`;
  // Every dead letter has these controls: each name says whose they are, after the words on
  // screen (in brackets: the hidden text is a box of its own, set apart with a space).
  const which = `${d.event} of ${subjectOf(d)} to ${d.route}`;
  return (
    <form method="post" action={`/notifications/${d.message_id}/retry`} class="resend">
      <label for={`${id}-reason`}>
        Why (optional)<span class="vh"> (re-send {which})</span>
      </label>
      <input id={`${id}-reason`} name="reason" maxlength={1000} />
      <NameField id={`${id}-by`} which={<span class="vh"> (re-send {which})</span>} optional />
      {/* The name starts with the words on screen (a speech user says "Re-send"). */}
      <button type="submit" aria-label={`Re-send: ${which}`}>
        Re-send
      </button>
    </form>
  );
}

function DeadLetters(props: { status: NotifyStatus }) {
  const letters = props.status.dead_letters;
  const viewer = useViewer();
  if (letters.length === 0) return <p id="notify-dead-letters">No dead letters.</p>;
  return (
    <table id="notify-dead-letters" class="counts">
      <caption>Latest dead letters: messages given up after their last try</caption>
      <thead>
        <tr>
          <th scope="col">Given up</th>
          <th scope="col">Route</th>
          <th scope="col">Event</th>
          <th scope="col">Incident</th>
          <th scope="col">Tries</th>
          <th scope="col">Last answer</th>
          {viewer.role === "admin" ? <th scope="col">Send again</th> : null}
        </tr>
      </thead>
      <tbody>
        {letters.map((d) => (
          <tr data-message-id={d.message_id}>
            <td>
              <time datetime={d.at}>{utc(d.at)}</time>
            </td>
            <td>
              <code>{d.route}</code>
            </td>
            <td>{d.event}</td>
            <td>
              {d.incident_id === null ? (
                `feed condition ${(d.condition_id ?? "").slice(0, 8)}`
              ) : (
                <a href={`/incidents/${d.incident_id}`}>{d.incident_id.slice(0, 8)}</a>
              )}
            </td>
            <td class="num">{d.attempts}</td>
            <td>{d.last_error ?? (d.last_status === null ? "–" : `HTTP ${d.last_status}`)}</td>
            {viewer.role === "admin" ? (
              <td>
                <ResendForm letter={d} />
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Said above the dead letters after one was sent again (`/status?resent=<message_id>`). */
function ResentNotice(props: { messageId: string }) {
  return (
    <p id="resend-notice" role="status" class="done" tabindex={-1}>
      Message <code>{props.messageId}</code> is pending again and goes out on the next pass, under
      the same <code>webhook-id</code>; the Pending column counts it until it is delivered.
    </p>
  );
}

/**
 * The Notifications section of the Health page; `resent`: a dead letter just sent again (its
 * notice).
 */
export function NotifyHealth(props: { status: NotifyHealthStatus; resent?: string }) {
  const { status } = props;
  return (
    <section aria-labelledby="notify-heading">
      <h2 id="notify-heading">Notifications</h2>
      {status === null ? (
        <p id="notify-routes">No notification routes are configured (NOTIFY_CONFIG is not set).</p>
      ) : "error" in status ? (
        <p id="notify-routes" class="error">
          The notification outbox could not be read: {status.error}
        </p>
      ) : (
        <>
          <Routes status={status} />
          <h3>Dead letters</h3>
          {props.resent ? <ResentNotice messageId={props.resent} /> : null}
          <DeadLetters status={status} />
        </>
      )}
    </section>
  );
}
