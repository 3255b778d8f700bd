// The streams whose machine is stopped (the engine's machine_off): shown apart, because a stop is not an anomaly; a stop whose sensors still read as running is called out.
import type { Retirement } from "../streams/retirement_repository.ts";
import type { MachineOff, SilentStream } from "./engine_monitor.ts";
import { utc } from "./format.ts";
import { StreamForm } from "./retired_streams_section.tsx";

/** Silent streams named at most; the rest are counted. */
const SILENT_SHOWN = 20;

export function MachineOffSection(props: {
  stopped: MachineOff[] | null | undefined;
  /** The engine does not answer now: these are from its last answer, at this ISO time. */
  lastKnownAt?: string;
  /** Streams that sent nothing past the engine's stale limit (absent: the engine does not say). */
  silent?: SilentStream[];
  /**
   * Retirements in force: their streams are not listed silent (retired_streams_section.tsx shows
   * them, engine or not).
   */
  retired?: Retirement[];
}) {
  const { stopped, lastKnownAt, retired = [] } = props;
  if (!stopped) return null;
  // A retired stream silent since no later than its last frame when retired (or, not listed
  // then, than its retirement) is not an outage; one silent since later sent again (the feed
  // watch ends its retirement), judged as the watch judges it.
  const held = (s: SilentStream) => {
    const r = retired.find((x) => x.stream_id === s.stream_id);
    return (
      r !== undefined &&
      Date.parse(s.last_accepted_at) <= Date.parse(r.last_accepted_at ?? r.retired_at)
    );
  };
  const silent = props.silent?.filter((s) => !held(s));

  const doubted = stopped.filter((s) => s.reads_running);
  return (
    <section aria-labelledby="machine-off-heading" data-last-known={lastKnownAt}>
      <h2 id="machine-off-heading">
        {lastKnownAt ? "Machines stopped (last known)" : "Machines stopped"}
      </h2>
      {lastKnownAt ? (
        <p id="machine-off-last-known">
          As the engine last answered, at <time datetime={lastKnownAt}>{utc(lastKnownAt)}</time>: it
          may have changed since.
        </p>
      ) : null}
      {doubted.length > 0 ? (
        <p id="machine-off-doubt">
          {doubted.length === 1 ? (
            <>
              <strong>1 stopped machine reads as running</strong>: its running condition says
              stopped while its other sensors stay in their running range and keep moving. If it
              runs, its running condition's sensor may have failed, and nothing it does is scored
              until that sensor reads running again.
            </>
          ) : (
            <>
              <strong>{doubted.length} stopped machines read as running</strong>: their running
              condition says stopped while their other sensors stay in their running range and keep
              moving. If one runs, its running condition's sensor may have failed, and nothing it
              does is scored until that sensor reads running again.
            </>
          )}
        </p>
      ) : null}
      {stopped.length === 0 ? (
        <p id="machine-off-none">
          {silent === undefined
            ? "No machine is stopped by its running condition (this engine does not list streams gone silent)."
            : silent.length
              ? "No machine is stopped by its running condition; the silent streams below have had no frame accepted."
              : "Every machine the engine scores is running."}
        </p>
      ) : (
        <table id="machine-off">
          <caption>
            Streams whose machine is not running: their windows are neither scored nor learned from
          </caption>
          <thead>
            <tr>
              <th scope="col">Stream</th>
              <th scope="col">Stopped since</th>
              <th scope="col">Check</th>
            </tr>
          </thead>
          <tbody>
            {stopped.map((s) => (
              <tr>
                <td>{s.stream_id}</td>
                <td>
                  <time datetime={s.since}>{utc(s.since)}</time>
                </td>
                <td>
                  {s.reads_running ? (
                    <>
                      Reads as running since{" "}
                      <time datetime={s.reads_running.since}>{utc(s.reads_running.since)}</time> (
                      {Math.round(s.reads_running.in_range * 100)} % of its sensors in their running
                      range): check its running sensor {s.reads_running.sensor}
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {silent?.length ? <SilentStreams silent={silent} /> : null}
    </section>
  );
}

/** Streams gone quiet without a stop (a line dark, a producer down): nothing of them is scored. */
function SilentStreams(props: { silent: SilentStream[] }) {
  const { silent } = props;
  const shown = silent.slice(0, SILENT_SHOWN);
  return (
    <>
      <h3 id="silent-heading">Streams silent</h3>
      <p id="silent-summary">
        {silent.length === 1 ? "1 stream has" : `${silent.length} streams have`} had no frame
        accepted for longer than the engine's stale limit (INCIDENT_STALE_MS), a line gone dark or a
        producer whose frames are refused (see the engine's rejected count): nothing of{" "}
        {silent.length === 1 ? "it" : "them"} is scored until frames are accepted again
        {silent.length > shown.length ? `; the ${shown.length} silent longest are listed` : ""}.
      </p>
      <table id="silent-streams" aria-labelledby="silent-heading">
        <thead>
          <tr>
            <th scope="col">Stream</th>
            <th scope="col">Last frame accepted</th>
            <th scope="col">Decommissioned?</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((s, i) => (
            <tr>
              <td>{s.stream_id}</td>
              <td>
                <time datetime={s.last_accepted_at}>{utc(s.last_accepted_at)}</time>
              </td>
              <td>
                <StreamForm
                  action={`/streams/${encodeURIComponent(s.stream_id)}/retire`}
                  id={`retire-${i}`}
                  stream={s.stream_id}
                  label="Retire"
                  what="Retiring a stream"
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
