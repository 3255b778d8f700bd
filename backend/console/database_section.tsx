// The Health page's Database section: size, the oldest rows kept, the retention horizons and the last prune.
import type { DatabaseHealth, LastPrune } from "../retention/database_health.ts";
import { num, utc } from "./format.ts";

/** What the section is given: the database's health, or why it could not be read. */
export type DatabaseHealthStatus = DatabaseHealth | { error: string };

/** "512 B", "3.4 MB", "1.2 GB". */
export function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : num(n, 3)} ${units[i]}`;
}

/** A horizon in days as people say it: "30 d", "2 h", "90 s"; 0 is "forever". */
export function horizon(days: number): string {
  if (days === 0) return "forever";
  const s = days * 86_400;
  if (s < 120) return `${num(s, 3)} s`;
  if (s < 7200) return `${num(s / 60, 3)} min`;
  if (days < 2) return `${num(s / 3600, 3)} h`;
  return `${num(days, 4)} d`;
}

function When(props: { at: string | null; none: string }) {
  if (!props.at) return <>{props.none}</>;
  return <time datetime={props.at}>{utc(props.at)}</time>;
}

function Retention(props: { last: LastPrune | null }) {
  const p = props.last;
  if (!p) {
    return (
      <>
        no prune recorded: a backend prunes when <code>RETENTION_ALERTS_DAYS</code> or{" "}
        <code>RETENTION_INCIDENTS_DAYS</code> is above 0
      </>
    );
  }
  return (
    <>
      alerts {horizon(p.alerts_days)}, resolved incidents with their verdicts{" "}
      {horizon(p.incidents_days)}; pruned every {horizon(p.every_s / 86_400)}
    </>
  );
}

function LastRun(props: { last: LastPrune }) {
  const p = props.last;
  const ms = Date.parse(p.finished_at) - Date.parse(p.started_at);
  return (
    <>
      <When at={p.finished_at} none="–" /> in {num(ms / 1000, 3)} s: {p.alerts} alerts (
      {p.alert_features} evidence rows), {p.incidents} incidents, {p.notifications} sent
      notifications deleted
      {p.error ? <span class="error">; stopped early: {p.error}</span> : null}
    </>
  );
}

export function DatabaseSection(props: { health: DatabaseHealthStatus | null }) {
  const h = props.health;
  if (h === null) return null;
  return (
    <section aria-labelledby="database-heading">
      <h2 id="database-heading">Database</h2>
      {"error" in h ? (
        <p id="database-error" class="error">
          The database's size and retention could not be read: {h.error}
        </p>
      ) : (
        <>
          <dl class="facts" id="database-health">
            <dt>Size</dt>
            <dd data-bytes={h.size_bytes}>
              {bytes(h.size_bytes)} (this backend's tables: {bytes(h.tables_bytes)})
            </dd>
            <dt>Oldest alert kept</dt>
            <dd data-oldest-alert={h.oldest_alert_at ?? ""}>
              <When at={h.oldest_alert_at} none="no alert stored" />
            </dd>
            <dt>Oldest incident kept</dt>
            <dd data-oldest-incident={h.oldest_incident_at ?? ""}>
              <When at={h.oldest_incident_at} none="no incident stored" />
            </dd>
            <dt>Retention</dt>
            <dd id="retention-horizons">
              <Retention last={h.last_prune} />
            </dd>
            <dt>Last prune</dt>
            <dd id="last-prune" data-error={h.last_prune?.error ? "true" : "false"}>
              {h.last_prune ? <LastRun last={h.last_prune} /> : "none yet"}
            </dd>
          </dl>
          {h.largest.length ? (
            <table id="database-tables" class="counts">
              <caption>Largest tables, with their indexes</caption>
              <thead>
                <tr>
                  <th scope="col">Table</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {h.largest.map((t) => (
                  <tr>
                    <th scope="row">
                      <code>{t.name}</code>
                    </th>
                    <td class="num">{bytes(t.bytes)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </>
      )}
    </section>
  );
}
