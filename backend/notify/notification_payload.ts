// The bodies a route receives: generic JSON (Standard Webhooks style) or Slack's incoming-webhook format.
import type { IncidentKind, NotifyFormat } from "./notify_config.ts";

export type NotifyEvent = "opened" | "updated" | "resolved" | "still_open";

/** The incident as a message describes it. */
export interface IncidentSnapshot {
  incident_id: string;
  stream_id: string;
  kind: IncidentKind;
  started_at: string;
  resolved_at: string | null;
  max_severity: number | null;
  max_score: number;
  /** Sensors flagged over the incident (the engine counts them all, lists the strongest). */
  num_sensors: number;
  /** The strongest few sensors, strongest first. */
  sensors: {
    feature_idx: number;
    feature: string | null;
    severity: number | null;
    score: number;
  }[];
  model_name: string | null;
  model_version: string | null;
}

/** What happened, for which route. */
export interface NotificationMessage {
  event: NotifyEvent;
  /** The alert_id of the incident event, or `<incident_id>/still_open/<n>` for a reminder. */
  event_key: string;
  /** When it happened (frame time of the event; for a reminder, when it fell due). */
  at: string;
  /** The event's severity (for a reminder, the incident's highest). */
  severity: number | null;
  route: string;
  /**
   * An opening sent because the maintenance silence the incident opened under ended while it was
   * still open (the route heard nothing of it before): that silence and when it ended (its end or
   * expiry; for a weekly window, when the notifier saw it closed).
   */
  after_silence?: { silence_id: string; ended_at: string };
}

const TITLES: Record<NotifyEvent, string> = {
  opened: "Incident opened",
  updated: "Incident severity rose",
  resolved: "Incident resolved",
  still_open: "Incident still open",
};

const round = (n: number | null) => (n === null ? null : Math.round(n * 100) / 100);

/**
 * The generic JSON body: `{type, timestamp, data}` as Standard Webhooks recommends, `type` being
 * `incident.opened` | `incident.updated` | `incident.resolved` | `incident.still_open`; an
 * opening sent once a silence ended adds `data.after_silence` (`{silence_id, ended_at}`).
 */
export function jsonBody(
  message: NotificationMessage,
  incident: IncidentSnapshot,
  consoleUrl?: string,
): string {
  return JSON.stringify({
    type: `incident.${message.event}`,
    timestamp: message.at,
    data: {
      event_id: message.event_key,
      event: message.event,
      route: message.route,
      severity: message.severity,
      incident: { ...incident, state: incident.resolved_at === null ? "open" : "resolved" },
      ...(message.after_silence ? { after_silence: message.after_silence } : {}),
      ...(consoleUrl ? { url: `${consoleUrl}/incidents/${incident.incident_id}` } : {}),
    },
  });
}

// Slack reads &, < and > as markup (links, mentions); user-written text must not be able to ping
// a channel or forge a link. https://api.slack.com/reference/surfaces/formatting#escaping
function slackEscape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Longest text of a Slack section block (a longer one is refused with 400, a dead letter). */
export const SLACK_SECTION_CHARS = 3000;

/**
 * `text` in at most `max` characters (long plant names: 256 characters, escaped up to five times
 * longer), cut with an ellipsis, never inside an escape (`&lt;` stays whole or goes).
 */
function slackCut(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1)).replace(/&[a-z]*$/, "")}…`;
}

/** Slack's incoming-webhook body: `text` (the notification line) and the same in `blocks`. */
export function slackBody(
  message: NotificationMessage,
  incident: IncidentSnapshot,
  consoleUrl?: string,
): string {
  const severity = round(message.severity ?? incident.max_severity);
  const headline =
    `${TITLES[message.event]} on ${slackEscape(incident.stream_id)} (${incident.kind})` +
    (severity === null ? "" : `, severity ${severity}`) +
    (message.after_silence ? " (opened under a maintenance silence that has ended)" : "");
  const sensors = incident.sensors
    .map((s) => {
      const name = slackEscape(s.feature ?? `feature_${s.feature_idx}`);
      return s.severity === null ? name : `${name} (${round(s.severity)})`;
    })
    .join(", ");
  const more = incident.num_sensors - incident.sensors.length;
  const lines = [
    `*${headline}*`,
    `Sensors: ${sensors || "none listed"}${more > 0 ? ` and ${more} more` : ""}`,
    `Started ${incident.started_at}` +
      (incident.resolved_at ? `, resolved ${incident.resolved_at}` : "") +
      (incident.model_name
        ? `; model ${slackEscape(incident.model_name)}@${slackEscape(incident.model_version ?? "?")}`
        : ""),
  ];
  if (consoleUrl) {
    lines.push(`<${consoleUrl}/incidents/${incident.incident_id}|Open in the console>`);
  }
  // Over the limit, the sensors line gives way (the headline and the console link stay).
  const excess = lines.join("\n").length - SLACK_SECTION_CHARS;
  if (excess > 0) lines[1] = slackCut(lines[1], lines[1].length - excess);
  const text = slackCut(lines.join("\n"), SLACK_SECTION_CHARS);
  return JSON.stringify({
    text,
    blocks: [{ type: "section", text: { type: "mrkdwn", text } }],
  });
}

/** The body for a route's format. */
export function notificationBody(
  format: NotifyFormat,
  message: NotificationMessage,
  incident: IncidentSnapshot,
  consoleUrl?: string,
): string {
  return format === "slack"
    ? slackBody(message, incident, consoleUrl)
    : jsonBody(message, incident, consoleUrl);
}

/** An event of a feed condition: its episode opened, or ended. */
export type ConditionEvent = "condition_opened" | "condition_resolved";

/** Any event an outbox message is about. */
export type OutboxEvent = NotifyEvent | ConditionEvent;

/** A feed condition as a message describes it (`feed_conditions.ts`). */
export interface ConditionSnapshot {
  condition_id: string;
  kind: "stream_silent" | "running_sensor_doubt" | "engine_unreachable";
  stream_id: string | null;
  sensor: string | null;
  /** The engine's URL for `engine_unreachable`, else the stream. */
  subject: string;
  since: string;
  ended_at: string | null;
  detail: Record<string, unknown>;
}

/** What happened to a condition, for which route. */
export interface ConditionMessage {
  event: ConditionEvent;
  /** `condition/<condition_id>/opened` or `/resolved`. */
  event_key: string;
  /** When: the episode's start (opened) or end (resolved). */
  at: string;
  route: string;
}

/** The console page that shows a condition: the Health page for the engine, else the Now page. */
function conditionPage(c: ConditionSnapshot, consoleUrl: string): string {
  return c.kind === "engine_unreachable" ? `${consoleUrl}/status` : `${consoleUrl}/`;
}

/** The condition in one line of words (plain text, not escaped). */
function conditionLine(event: ConditionEvent, c: ConditionSnapshot): string {
  const ended = event === "condition_resolved";
  switch (c.kind) {
    case "stream_silent":
      if (ended && typeof c.detail.retired_by === "string") {
        return `Stream ${c.stream_id} was retired by ${c.detail.retired_by} (${String(c.detail.retire_reason)}): its silence pages nobody (silent since ${c.since})`;
      }
      return ended
        ? `Stream ${c.stream_id} is sending again (silent since ${c.since})`
        : `Stream ${c.stream_id} is silent: no frame accepted since ${c.since}`;
    case "running_sensor_doubt": {
      const share = c.detail.in_range;
      const others = typeof share === "number" ? ` (${Math.round(share * 100)} % of them)` : "";
      return ended
        ? `Running condition of ${c.stream_id} agrees with its sensors again (sensor ${c.sensor})`
        : `Machine of ${c.stream_id} reads as stopped by sensor ${c.sensor} while its other sensors read as running${others}, since ${c.since}: the sensor may have failed, nothing of the stream is scored`;
    }
    case "engine_unreachable":
      return ended
        ? `Engine ${c.subject} is reachable again (out of reach since ${c.since})`
        : `Engine ${c.subject} is out of reach since ${c.since}${typeof c.detail.reason === "string" ? `: ${c.detail.reason}` : ""}; nothing is scored or seen`;
  }
}

/**
 * The body of a condition's message. JSON: `{type, timestamp, data}`, `type` being
 * `condition.opened` | `condition.resolved`, `data.condition` the episode (`kind`, `stream_id`,
 * `sensor`, `since`, `ended_at`, `state`, `detail`) and `data.text` the line Slack shows. Slack:
 * that line, escaped, with a link to the console.
 */
export function conditionBody(
  format: NotifyFormat,
  message: ConditionMessage,
  condition: ConditionSnapshot,
  consoleUrl?: string,
): string {
  const line = conditionLine(message.event, condition);
  if (format === "slack") {
    const lines = [`*${slackEscape(line)}*`];
    if (consoleUrl) lines.push(`<${conditionPage(condition, consoleUrl)}|Open in the console>`);
    const text = slackCut(lines.join("\n"), SLACK_SECTION_CHARS);
    return JSON.stringify({ text, blocks: [{ type: "section", text: { type: "mrkdwn", text } }] });
  }
  return JSON.stringify({
    type: message.event === "condition_opened" ? "condition.opened" : "condition.resolved",
    timestamp: message.at,
    data: {
      event_id: message.event_key,
      event: message.event,
      route: message.route,
      text: line,
      condition: { ...condition, state: condition.ended_at === null ? "open" : "resolved" },
      ...(consoleUrl ? { url: conditionPage(condition, consoleUrl) } : {}),
    },
  });
}
