// Which incident events a route is told about: its matchers (stream glob, severity, kind) and the event rules.
import { globMatcher } from "../../contracts/model_routes.ts";
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
  /**
   * `resolved`: whether the route was told about the incident before: a message about it that
   * may have reached the receiver (delivered, or tried at least once: not one pending never tried).
   */
  told?: boolean;
  /**
   * Whether the route has a message about the incident yet (for an `opened`, one about an event
   * that was planned before it: the opening arrived late); a silenced one
   * counts while this event is under a silence too, or for the end (an event outside the silence
   * is the first the route hears, as an opening would be); dead letters are not counted (a route
   * whose opening died in a receiver's outage never heard of it).
   */
  messaged?: boolean;
  /**
   * `opened`, `updated`: the incident's resolution was planned before this event (its alert
   * arrived late). Nobody is told then: a route would get an opening that no `resolved` follows.
   */
  after_resolution?: boolean;
}

const globs = new Map<string, (text: string) => boolean>();

/**
 * A route's stream glob as a matcher of whole ids: `*` any run of characters, `?` one,
 * everything else literal; linear in the id (`globMatcher`, as `MODEL_ROUTES` matches). A
 * regular expression of `.*` runs backtracked: a route matching `*-*-*-*-*-*-pump` held the
 * backend's event loop for 46 s on one incident of a 128-character stream id a producer chose.
 *
 * @example streamGlob("line-*")("line-3"); // true
 */
export function streamGlob(glob: string): (text: string) => boolean {
  let matches = globs.get(glob);
  if (!matches) {
    matches = globMatcher(glob);
    if (globs.size > 1000) globs.clear();
    globs.set(glob, matches);
  }
  return matches;
}

/** Whether the route's matchers accept the incident at `severity` (absent matchers accept all). */
export function routeMatches(
  route: Pick<NotifyRoute, "match">,
  incident: Omit<MatchIncident, "max_severity">,
  severity: number | null,
): boolean {
  const { stream, kind, min_severity } = route.match;
  if (stream !== undefined && !streamGlob(stream)(incident.stream_id)) return false;
  if (kind !== undefined && incident.kind !== kind) return false;
  if (min_severity !== undefined && (severity === null || severity < min_severity)) return false;
  return true;
}

/** What matching needs to know about a feed condition (`feed_conditions.ts`). */
export interface MatchCondition {
  /** Null for the engine out of reach: it concerns every stream. */
  stream_id: string | null;
}

/**
 * Whether the route hears of a feed condition (a stream gone silent, a running condition's
 * sensor in doubt, the engine out of reach): its `kind` absent or `feed`, no `min_severity` (a
 * condition has no severity, and a route that asks for one wants anomalies only), its stream glob
 * matching the condition's stream (the engine's concerns every stream).
 */
export function conditionMatches(route: Pick<NotifyRoute, "match">, c: MatchCondition): boolean {
  const { stream, kind, min_severity } = route.match;
  if (kind !== undefined && kind !== "feed") return false;
  if (min_severity !== undefined) return false;
  return stream === undefined || c.stream_id === null || streamGlob(stream)(c.stream_id);
}

/**
 * Whether the route is told about this event. `opened`: when the incident, of the kind the
 * event's alert gave, matches at the event's severity, and the route has no message about it yet
 * (an opening that arrived after an update the route was told of would page twice). `updated`: when it matches so and either
 * its severity rises above every earlier event's (so a route hears that an incident got worse, or
 * crossed its `min_severity`, not each periodic update), or the route has no message about it yet
 * (its kind changed to the route's while open, or its opening died in a receiver's outage: the
 * route must hear of it while it can act, not only when it ends). `resolved`: to every route with a message about the incident before,
 * whatever its kind became since, and to any the incident matches at its highest severity, so
 * that every route an incident concerns hears of it at least once, whatever order its events
 * arrived in (a route whose opening was lost to that order learns that it happened and ended).
 * An `opened` or `updated` that arrives after the incident's resolution was planned tells nobody:
 * it would raise a page that no `resolved` follows.
 */
export function shouldNotify(
  route: Pick<NotifyRoute, "match">,
  incident: MatchIncident,
  event: MatchEvent,
): boolean {
  const asThen = { stream_id: incident.stream_id, kind: event.kind ?? incident.kind };
  if (event.after_resolution === true && event.event !== "resolved") return false;
  switch (event.event) {
    case "opened":
      // A late opening (an update of the incident was planned first): the route that heard the
      // update already took it as the opening, as a receiver takes any event of an incident it
      // does not know; a second one would page again under another webhook-id.
      return event.messaged !== true && routeMatches(route, asThen, event.severity);
    case "updated": {
      const rises =
        event.severity !== null &&
        (event.prior_severity === null || event.severity > event.prior_severity);
      return (rises || event.messaged === false) && routeMatches(route, asThen, event.severity);
    }
    case "resolved":
      // A route whose messages were all silenced gets its `resolved` written silenced too: the
      // decision is recorded, nothing is sent.
      return (
        event.told === true ||
        event.messaged === true ||
        routeMatches(route, incident, incident.max_severity)
      );
  }
}
