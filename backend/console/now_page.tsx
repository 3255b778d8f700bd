// The Now page: open incidents newest first, and resolved ones that started in the last hour, kept live by SSE.
import type { IncidentSummary } from "../incidents/incident_types.ts";
import type { MachineOff } from "./engine_monitor.ts";
import { IncidentTable } from "./incident_row.tsx";
import { Layout } from "./layout.tsx";
import { MachineOffSection } from "./machine_off_section.tsx";

export function NowPage(props: {
  open: IncidentSummary[];
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
