// Which incident events a route is told about: its matchers (stream glob, severity, kind) and the event rules.
import type { IncidentKind, NotifyRoute } from "./notify_config.ts";

/** What matching needs to know about an incident. */
export interface MatchIncident {
  stream_id: string;
  kind: IncidentKind;
  /** The incident's highest severity over every stored alert. */
  max_severity: number | null;
}

/** One stored incident event: its severity and the highest of the incident's earlier events. */
export interface MatchEvent {
  event: "opened" | "updated" | "resolved";
  severity: number | null;
  /** Highest severity of the incident's events before this one (by frame time); null when none. */
  prior_severity: number | null;
  /**
   * The fault kind the event's own alert gave (`opened`, `updated`): the incident's kind as it
   * was then, which a later alert may change; absent: the incident's.
   */
  kind?: IncidentKind;
  /** `resolved`: whether the route was told about the incident before (a message not silenced). */
  told?: boolean;
}

const globs = new Map<string, RegExp>();

/**
 * A glob as a whole-string pattern: `*` any run of characters, `?` one, everything else literal.
 *
 * @example globToRegExp("line-*").test("line-3"); // true
 */
export function globToRegExp(glob: string): RegExp {
  let re = globs.get(glob);
  if (!re) {
    const body = glob
      .split("")
      .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[\\^$.+()[\]{}|/]/g, "\\$&")))
      .join("");
    re = new RegExp(`^${body}$`, "s");
    if (globs.size > 1000) globs.clear();
    globs.set(glob, re);
  }
  return re;
}

/** Whether the route's matchers accept the incident at `severity` (absent matchers accept all). */
export function routeMatches(
  route: Pick<NotifyRoute, "match">,
  incident: Omit<MatchIncident, "max_severity">,
  severity: number | null,
): boolean {
  const { stream, kind, min_severity } = route.match;
  if (stream !== undefined && !globToRegExp(stream).test(incident.stream_id)) return false;
  if (kind !== undefined && incident.kind !== kind) return false;
  if (min_severity !== undefined && (severity === null || severity < min_severity)) return false;
  return true;
}

/**
 * Whether the route is told about this event. `opened`: when the incident, of the kind the
 * event's alert gave, matches at the event's severity. `updated`: only when its severity rises
 * above every earlier event's (so a route hears that an incident got worse, or crossed its
 * `min_severity`, not each periodic update). `resolved`: to every route told about the incident
 * before, whatever the incident's kind became since, and to any the incident matches at its
 * highest severity, so everyone who could have been told it opened hears it ended, whatever
 * order the events arrived in.
 */
export function shouldNotify(
  route: Pick<NotifyRoute, "match">,
  incident: MatchIncident,
  event: MatchEvent,
): boolean {
  const asThen = { stream_id: incident.stream_id, kind: event.kind ?? incident.kind };
  switch (event.event) {
    case "opened":
      return routeMatches(route, asThen, event.severity);
    case "updated":
      return (
        event.severity !== null &&
        (event.prior_severity === null || event.severity > event.prior_severity) &&
        routeMatches(route, asThen, event.severity)
      );
    case "resolved":
      return event.told === true || routeMatches(route, incident, incident.max_severity);
  }
}
