// The Now page: open incidents newest first, and resolved ones that started in the last hour, kept live by SSE.
import type { IncidentSummary } from "../incidents/incident_types.ts";
import type { MachineOff } from "./engine_monitor.ts";
import { IncidentTable } from "./incident_row.tsx";
import { Layout } from "./layout.tsx";
import { MachineOffSection } from "./machine_off_section.tsx";

/** The most incidents one answer of the incidents API gives (its `limit`'s maximum). */
export const ALL_OPEN_LIMIT = 500;

/**
 * Where more open incidents are listed when the Now page shows only the newest: the incidents
 * API, open ones, newest first, one answer of {@link ALL_OPEN_LIMIT} (the console has no list
 * page of its own).
 */
export const ALL_OPEN_HREF = `/api/v1/incidents?state=open&limit=${ALL_OPEN_LIMIT}`;

/**
 * "200 of 312 open incidents shown, oldest not shown", with the way to more: all of them while
 * one answer of the API holds them, else the newest 500 (the rest by its `next_cursor`).
 */
function OpenNotShown(props: { shown: number; total: number }) {
  return (
    <p id="open-incidents-more" class="more">
      <strong>
        {props.shown} of {props.total} open incidents shown, oldest not shown.
      </strong>{" "}
      <a href={ALL_OPEN_HREF}>
        {props.total > ALL_OPEN_LIMIT
          ? `Newest ${ALL_OPEN_LIMIT} of the ${props.total} open incidents (JSON)`
          : `All ${props.total} open incidents (JSON, newest first)`}
      </a>
    </p>
  );
}

export function NowPage(props: {
  open: IncidentSummary[];
  /** How many incidents are open; more than `open` holds when the page lists only the newest. */
  openTotal: number;
  resolved: IncidentSummary[];
  now: number;
  /** The engine's stopped machines (absent without an engine URL or an answer). */
  stopped?: MachineOff[] | null;
}) {
  return (
    <Layout title="Now" section="now">
      <h1>Now</h1>
      <p id="live-status" class="live" role="status">
        Showing incidents as of page load; live updates start once the page's script runs.
      </p>
      <section aria-labelledby="open-heading">
        <h2 id="open-heading">Open incidents</h2>
        {props.openTotal > props.open.length ? (
          <OpenNotShown shown={props.open.length} total={props.openTotal} />
        ) : null}
        <IncidentTable
          id="open-incidents"
          caption="Open incidents, newest first"
          incidents={props.open}
          now={props.now}
          empty="No open incidents."
        />
      </section>
      <MachineOffSection stopped={props.stopped} />
      <section aria-labelledby="resolved-heading">
        <h2 id="resolved-heading">Resolved, started in the last hour</h2>
        <IncidentTable
          id="resolved-incidents"
          caption="Resolved incidents that started in the last hour, newest first"
          incidents={props.resolved}
          now={props.now}
          empty="None."
        />
      </section>
    </Layout>
  );
}
