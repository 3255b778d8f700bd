// The streams whose machine is stopped (the engine's machine_off): shown apart, because a stop is not an anomaly; a stop whose sensors still read as running is called out.
import type { MachineOff } from "./engine_monitor.ts";
import { utc } from "./format.ts";

export function MachineOffSection(props: {
  stopped: MachineOff[] | null | undefined;
  /** The engine does not answer now: these are from its last answer, at this ISO time. */
  lastKnownAt?: string;
}) {
  const { stopped, lastKnownAt } = props;
  if (!stopped) return null;
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
    </section>
  );
}
