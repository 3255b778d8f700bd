// The streams whose machine is stopped (the engine's machine_off): shown apart, because a stop is not an anomaly.
import type { MachineOff } from "./engine_monitor.ts";
import { utc } from "./format.ts";

export function MachineOffSection(props: {
  stopped: MachineOff[] | null | undefined;
  /** The engine does not answer now: these are from its last answer, at this ISO time. */
  lastKnownAt?: string;
}) {
  const { stopped, lastKnownAt } = props;
  if (!stopped) return null;
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
      {stopped.length === 0 ? (
        <p id="machine-off-none">Every machine the engine scores is running.</p>
      ) : (
        <table id="machine-off">
          <caption>
            Streams whose machine is not running: their windows are neither scored nor learned from
          </caption>
          <thead>
            <tr>
              <th scope="col">Stream</th>
              <th scope="col">Stopped since</th>
            </tr>
          </thead>
          <tbody>
            {stopped.map((s) => (
              <tr>
                <td>{s.stream_id}</td>
                <td>
                  <time datetime={s.since}>{utc(s.since)}</time>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
