// The Health page's Database section: size, the oldest rows kept, the retention in force and the last prune (overdue or not).
import type { DatabaseHealth, LastPrune } from "../retention/database_health.ts";
import type { RetentionSettings } from "../retention/retention_settings.ts";
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

/** The retention settings this backend runs with now (its `RETENTION_*` variables). */
export type RetentionInForce = Pick<
  RetentionSettings,
  "alertsDays" | "incidentsDays" | "everyMs" | "enabled"
>;

/** A prune this long past its interval's end counts as overdue: twice the interval. */
export const OVERDUE_INTERVALS = 2;

function Horizons(props: { alertsDays: number; incidentsDays: number; everyMs: number }) {
  return (
    <>
      alerts {horizon(props.alertsDays)}, resolved incidents nobody acted on (no acknowledgement or
      verdict) {horizon(props.incidentsDays)}; pruned every {horizon(props.everyMs / 86_400_000)}
    </>
  );
}

function Retention(props: { settings: RetentionInForce | undefined; last: LastPrune | null }) {
  const r = props.settings;
  const p = props.last;
  // An app built without its settings (an embedder, a test): the last prune's, said as such.
  if (!r) {
    return p ? (
      <>
        as the last prune ran:{" "}
        <Horizons
          alertsDays={p.alerts_days}
          incidentsDays={p.incidents_days}
          everyMs={p.every_s * 1000}
        />
      </>
    ) : (
      <>not known to this page</>
    );
  }
  if (!r.enabled) {
    return (
      <>
        retention off: keeps everything (<code>RETENTION_ALERTS_DAYS</code> and{" "}
        <code>RETENTION_INCIDENTS_DAYS</code> are 0)
      </>
    );
  }
  return <Horizons alertsDays={r.alertsDays} incidentsDays={r.incidentsDays} everyMs={r.everyMs} />;
}

/** Whether the last prune ran under other horizons than those in force now. */
function ranOtherwise(p: LastPrune, r: RetentionInForce | undefined): boolean {
  if (!r) return false; // then Retention shows them
  return (
    !r.enabled ||
    p.alerts_days !== r.alertsDays ||
    p.incidents_days !== r.incidentsDays ||
    p.every_s * 1000 !== r.everyMs
  );
}

/**
 * Whether the next prune is overdue: retention is on here and the last one finished more than
 * {@link OVERDUE_INTERVALS} intervals ago (the pruner stopped, or a run hangs).
 */
export function pruneOverdue(
  p: LastPrune | null,
  r: RetentionInForce | undefined,
  now: number,
): boolean {
  if (!p || !r?.enabled) return false;
  return now - Date.parse(p.finished_at) > OVERDUE_INTERVALS * r.everyMs;
}

function LastRun(props: { last: LastPrune; settings?: RetentionInForce; overdue: boolean }) {
  const p = props.last;
  const r = props.settings;
  const ms = Date.parse(p.finished_at) - Date.parse(p.started_at);
  return (
    <>
      <When at={p.finished_at} none="–" /> in {num(ms / 1000, 3)} s: {p.alerts} alerts (
      {p.alert_features} evidence rows), {p.incidents} incidents, {p.conditions} ended feed
      conditions, {p.notifications} sent notifications deleted
      {p.error ? <span class="error">; stopped early: {p.error}</span> : null}
      {ranOtherwise(p, r) ? (
        <span class="last-prune-horizons">
          ; it ran with{" "}
          <Horizons
            alertsDays={p.alerts_days}
            incidentsDays={p.incidents_days}
            everyMs={p.every_s * 1000}
          />
        </span>
      ) : null}
      {props.overdue && r ? (
        <strong class="error" id="prune-overdue">
          {" "}
          Overdue: no prune has finished for over {OVERDUE_INTERVALS} intervals (
          {horizon((OVERDUE_INTERVALS * r.everyMs) / 86_400_000)}); the pruner may have stopped or
          hang. See the backend's log.
        </strong>
      ) : null}
    </>
  );
}

export function DatabaseSection(props: {
  health: DatabaseHealthStatus | null;
  /** The retention settings in force in this backend; absent: not known here. */
  retention?: RetentionInForce;
  /** Milliseconds since the epoch, to judge the last prune overdue. */
  now: number;
}) {
  const h = props.health;
  if (h === null) return null;
  const overdue = "error" in h ? false : pruneOverdue(h.last_prune, props.retention, props.now);
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
              <Retention settings={props.retention} last={h.last_prune} />
            </dd>
            <dt>Last prune</dt>
            <dd
              id="last-prune"
              data-error={h.last_prune?.error ? "true" : "false"}
              data-overdue={overdue ? "true" : "false"}
            >
              {h.last_prune ? (
                <LastRun last={h.last_prune} settings={props.retention} overdue={overdue} />
              ) : props.retention?.enabled ? (
                "none yet"
              ) : (
                <>
                  no prune recorded: a backend prunes when <code>RETENTION_ALERTS_DAYS</code> or{" "}
                  <code>RETENTION_INCIDENTS_DAYS</code> is above 0
                </>
              )}
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
