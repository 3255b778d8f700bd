// The Now page: open incidents newest first, and resolved ones that started in the last hour, kept live by SSE.

import type { IncidentSummary } from "../incidents/incident_types.ts";
import type { IncidentNotified } from "../notify/outbox_repository.ts";
import type { Retirement } from "../streams/retirement_repository.ts";
import type { EngineNow } from "./engine_monitor.ts";
import { utc } from "./format.ts";
import { IncidentTable } from "./incident_row.tsx";
import { Layout } from "./layout.tsx";
import { MachineOffSection } from "./machine_off_section.tsx";
import { RetiredStreamsSection } from "./retired_streams_section.tsx";

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

/**
 * Where the resolved incidents of the last hour are listed when the Now page shows only the
 * newest: the incidents API, resolved ones that started from `from` (the page's hour), newest
 * first, one answer of {@link ALL_OPEN_LIMIT}.
 */
export function resolvedHref(from: string): string {
  return `/api/v1/incidents?${new URLSearchParams({ state: "resolved", from, limit: String(ALL_OPEN_LIMIT) })}`;
}

/**
 * "20 of 27 resolved incidents shown, earliest started not shown", with the way to all of them
 * (the newest 500 past one answer of the API), as {@link OpenNotShown} says it of the open ones.
 */
function ResolvedNotShown(props: { shown: number; total: number; from: string }) {
  return (
    <p id="resolved-incidents-more" class="more">
      <strong>
        {props.shown} of {props.total} resolved incidents shown, earliest started not shown.
      </strong>{" "}
      <a href={resolvedHref(props.from)}>
        {props.total > ALL_OPEN_LIMIT
          ? `Newest ${ALL_OPEN_LIMIT} of the ${props.total} that started in the last hour (JSON)`
          : `All ${props.total} that started in the last hour (JSON, newest first)`}
      </a>
    </p>
  );
}

/**
 * "Engine unreachable (why) since …": nothing is scored meanwhile, so the page says it before the
 * lists (whose emptiness would otherwise read as a quiet plant), with the way to Health.
 */
function EngineUnreachable(props: { state: Extract<EngineNow, { reachable: false }> }) {
  const { state } = props;
  return (
    <p id="engine-unreachable" class="error" role="status">
      <strong>Engine unreachable</strong> ({state.reason}) since{" "}
      <time datetime={state.since}>{utc(state.since)}</time> — frames are not being scored; see{" "}
      <a href="/status">Health</a>.
    </p>
  );
}

export function NowPage(props: {
  open: IncidentSummary[];
  /** How many incidents are open; more than `open` holds when the page lists only the newest. */
  openTotal: number;
  resolved: IncidentSummary[];
  /**
   * How many incidents resolved that started from `resolvedFrom` (the page's hour); more than
   * `resolved` holds when the page lists only the newest.
   */
  resolvedTotal: number;
  /** The start of the page's hour (ISO), from which `resolved` and `resolvedTotal` count. */
  resolvedFrom: string;
  now: number;
  /** The engine's stopped machines, or why it cannot be reached (absent without an engine URL). */
  engine?: EngineNow | null;
  /** Retirements in force: their streams are shown under "Retired streams", not as silent. */
  retired?: Retirement[];
  /** Both lists' outbox messages by incident (one read for the page); absent: not read. */
  notified?: Map<string, IncidentNotified>;
}) {
  const engine = props.engine;
  return (
    <Layout title="Now" section="now">
      <h1>Now</h1>
      <p id="live-status" class="live" role="status">
        Showing incidents as of page load; live updates start once the page's script runs.
      </p>
      {engine && !engine.reachable ? <EngineUnreachable state={engine} /> : null}
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
          notified={props.notified}
          empty="No open incidents."
        />
      </section>
      {engine?.reachable ? (
        <MachineOffSection
          stopped={engine.stopped}
          silent={engine.silent}
          retired={props.retired}
        />
      ) : null}
      {engine && !engine.reachable && engine.lastKnown ? (
        <MachineOffSection stopped={engine.lastKnown.stopped} lastKnownAt={engine.lastKnown.at} />
      ) : null}
      {/* From the database: shown, and can be watched again, whatever the engine answers. */}
      <RetiredStreamsSection retired={props.retired} />
      <section aria-labelledby="resolved-heading">
        <h2 id="resolved-heading">Resolved, started in the last hour</h2>
        {props.resolvedTotal > props.resolved.length ? (
          <ResolvedNotShown
            shown={props.resolved.length}
            total={props.resolvedTotal}
            from={props.resolvedFrom}
          />
        ) : null}
        <IncidentTable
          id="resolved-incidents"
          caption="Resolved incidents that started in the last hour, newest first"
          incidents={props.resolved}
          now={props.now}
          notified={props.notified}
          empty="None."
        />
      </section>
    </Layout>
  );
}
