// Drives notifications: plans stored incident events and reminders into the outbox, delivers due messages per route.

import { setMaxListeners } from "node:events";
import {
  compileSilence,
  matchersCoverEverything,
  silenceCoversAll,
  silenceHolds,
} from "../../contracts/silence_match.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { Database } from "../db/database.ts";
import { isRefused, isUnavailable } from "../db/db_errors.ts";
import { closeSupersededIncidents, SUPERSEDE_AFTER_MS } from "../incidents/superseded_incidents.ts";
import { createSilenceRepository } from "../silences/silence_repository.ts";
import {
  type ConditionMessage,
  type ConditionSnapshot,
  conditionBody,
  type IncidentSnapshot,
  type NotificationMessage,
  type NotifyEvent,
  notificationBody,
} from "./notification_payload.ts";
import type { NotifyConfig, NotifyRoute } from "./notify_config.ts";
import {
  AFTER_SILENCE,
  type ClaimedMessage,
  type ConditionToPlan,
  createOutboxRepository,
  type NewMessage,
  type OutboxStatus,
} from "./outbox_repository.ts";
import { backoffMs } from "./retry_policy.ts";
import { conditionMatches, shouldNotify } from "./route_match.ts";
import { sendNotification } from "./send_notification.ts";

export interface NotificationDispatcherOptions {
  database: Pick<Database, "sql" | "recover">;
  config: NotifyConfig;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
  log?: Logger;
  /** Pause between passes over the outbox (1 s). */
  pollMs?: number;
  /** Events planned per statement (200). */
  batchSize?: number;
  /** Jitter source for the backoff. */
  random?: () => number;
  /**
   * How long after its successor was stored an incident its engine never ended is closed
   * (`SUPERSEDE_AFTER_MS`); checked every minute, or every quarter of this when shorter.
   */
  supersedeAfterMs?: number;
  /** A failure of the passes that persists is warned of again after this long (10 minutes). */
  failureRewarnMs?: number;
}

/** What the Health page shows: the configured routes and the outbox's counts. */
export interface NotifyStatus extends OutboxStatus {
  configured: { name: string; format: string; target: string; repeat_every_ms: number | null }[];
  /**
   * The window (ms) over which messages done (delivered, dead, silenced, stale, superseded) are
   * counted.
   */
  window_ms: number;
}

export type NotificationDispatcher = ReturnType<typeof createNotificationDispatcher>;

/** Whether `error` says the database is out of reach (a 503 from a repository, or its own code). */
function isDatabaseOutage(error: unknown): boolean {
  return (
    (error as { status?: unknown } | null)?.status === 503 ||
    isUnavailable(error) ||
    isRefused(error)
  );
}

/** A persisting failure of the passes is warned of again after this long (10 minutes). */
const FAILURE_REWARN_MS = 10 * 60_000;

/**
 * The database's own error behind `error` (a repository's 503 keeps it as `cause`), else
 * `error` itself.
 */
function rootError(error: unknown): Error {
  const cause = (error as { status?: unknown; cause?: unknown } | null)?.cause;
  if ((error as { status?: unknown } | null)?.status === 503 && cause instanceof Error) {
    return cause;
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * What makes two failures the same failure: the server out of reach is one (stopping, closed,
 * refusing connections: the one outage); any other, its code and its message without digits (a
 * pid, a port, a count), so the same refusal repeated matches and a different one does not.
 */
function failureKey(error: Error): string {
  if (isUnavailable(error)) return "unavailable";
  const code = (error as { code?: unknown }).code;
  return `${typeof code === "string" ? code : error.name}|${error.message.replace(/\d+/g, "#")}`;
}

/** Whether a silence holding now covers an incident of `stream` that flagged `flagged` (names). */
type Covers = (stream: string, flagged: string[]) => boolean;

/** The silences holding at a pass's time: their ids, and what they cover. */
interface Holding {
  ids: string[];
  /** Only where reminders exist (it is what stops them), and some silence holds. */
  covers: Covers | undefined;
  /** Whether one of them covers an incident (any routes). */
  coversNow: Covers;
  /** Whether one of them covers every stream and sensor (the engine out of reach). */
  coversEverything: boolean;
}

/**
 * Whether `work` settles before `deadline` aborts; without a deadline it is waited for. A failure
 * of `work` counts as settled (the loop and deliveries log their own).
 */
async function settlesBefore(work: Promise<unknown>, deadline?: AbortSignal): Promise<boolean> {
  const settled = work.then(
    () => true,
    () => true,
  );
  if (!deadline) return await settled;
  if (deadline.aborted) return false;
  return await Promise.race([
    settled,
    new Promise<boolean>((resolve) =>
      deadline.addEventListener("abort", () => resolve(false), { once: true }),
    ),
  ]);
}

// A claimed message stays leased this long past its route's timeout, so a slow answer is not
// claimed twice; a process that died mid-delivery leaves the lease to run out.
const LEASE_MARGIN_MS = 5000;
const STATUS_WINDOW_MS = 24 * 3_600_000;

/**
 * `webhook-id` of a message: derived from the event and route only, so it is the same on every
 * attempt, after a restart, and from any backend instance.
 */
export async function messageId(eventKey: string, route: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${eventKey}\n${route}`),
  );
  const hex = Array.from(new Uint8Array(digest).slice(0, 16), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  return `msg_${hex}`;
}

/** The incident as it stood at one of its events: open (unless it is the resolution), at the event's severity. */
export function asAtEvent(
  incident: IncidentSnapshot,
  event: NotifyEvent,
  severity: number | null,
): IncidentSnapshot {
  if (event === "resolved") return incident;
  return { ...incident, resolved_at: null, max_severity: severity ?? incident.max_severity };
}

/**
 * Whether an event at `at` is too old for the route at `t` (its `max_age`): a backfill of old data
 * (a site re-sending last week after an outage, history loaded by hand), not something happening
 * now, so it is written `stale` instead of paging.
 */
function tooOld(route: NotifyRoute, at: Date, t: number): boolean {
  return t - at.getTime() > route.maxAgeMs;
}

/** Where a route sends, without the path (a Slack webhook URL's path is its secret). */
function targetOf(route: NotifyRoute): string {
  return new URL(route.webhook.url).origin;
}

/**
 * The notification dispatcher. `start()` runs passes until `stop()`: each plans new incident
 * events (exactly one outbox row per event and matching route, in the statement that marks the
 * event planned), plans `repeat_every` reminders, then claims due messages per route up to the
 * route's concurrency and delivers them. Delivery is at least once with a stable `webhook-id`.
 *
 * @example const notify = createNotificationDispatcher({ database, config, log }); notify.start();
 */
export function createNotificationDispatcher(options: NotificationDispatcherOptions) {
  const { config, log } = options;
  const outbox = createOutboxRepository(options.database);
  const silences = createSilenceRepository(options.database, () => now());
  const fetchImpl = options.fetch ?? containedFetch;
  const now = options.now ?? (() => Date.now());
  const pollMs = options.pollMs ?? 1000;
  const batchSize = options.batchSize ?? 200;
  const random = options.random ?? Math.random;
  const supersedeAfterMs = options.supersedeAfterMs ?? SUPERSEDE_AFTER_MS;
  const failureRewarnMs = options.failureRewarnMs ?? FAILURE_REWARN_MS;
  const supersedeEveryMs = Math.min(60_000, Math.max(pollMs, supersedeAfterMs / 4));
  let supersededAt = -Infinity;
  const routes = new Map(config.routes.map((r) => [r.name, r]));
  const inFlight = new Map<string, number>();
  const deliveries = new Set<Promise<void>>();
  const lifetime = new AbortController();
  // Each delivery in flight listens on this one signal (its time limit follows it), and more
  // than Node's default of 10 prints a leak warning that is no JSON log line; so its limit is
  // the deliveries that can be in flight at once, never below the default.
  const slots = config.routes.reduce((sum, r) => sum + r.concurrency, 0);
  setMaxListeners(Math.max(10, slots), lifetime.signal);
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  /** Whether a pass is running (not waiting for the next one). */
  let passing = false;

  async function toMessage(
    route: NotifyRoute,
    message: NotificationMessage,
    incident: Parameters<typeof notificationBody>[2],
    state: NewMessage["state"],
  ): Promise<NewMessage> {
    return {
      message_id: await messageId(message.event_key, route.name),
      route: route.name,
      event_key: message.event_key,
      incident_id: incident.incident_id,
      event: message.event,
      event_at: new Date(message.at),
      severity: message.severity,
      body: notificationBody(route.webhook.format, message, incident, config.consoleUrl),
      state,
    };
  }

  /**
   * What becomes of a message of the route about an event at `at`, planned at `t`: sent
   * (`pending`) when it `closes` the page the route was told of (the end of an incident it heard
   * of goes out under a silence and however late, or the page stays open in the receiver's tool);
   * else `silenced` when a silence mutes it, `stale` when the event is older than the route's
   * `max_age`, sent otherwise.
   */
  function stateOf(
    route: NotifyRoute,
    at: Date,
    t: number,
    o: { silenced: boolean; closes?: boolean },
  ): NewMessage["state"] {
    if (o.closes) return "pending";
    if (o.silenced) return "silenced";
    return tooOld(route, at, t) ? "stale" : "pending";
  }

  /** Plans stored incident events until none is left; resolves with how many were planned. */
  async function planEvents(holding: Holding): Promise<number> {
    let planned = 0;
    for (;;) {
      const events = await outbox.unplanned(batchSize, holding.ids);
      if (events.length === 0) return planned;
      const t = now();
      const messages: NewMessage[] = [];
      // Routes given a message about each incident in this batch (sent: told; any, also silenced
      // or stale: recorded): its outbox rows are not written yet, so a later event of the same
      // incident planned with it (its resolution, an update) learns of them here, as
      // `unplanned` would have told it from the rows.
      const toldNow = new Map<string, Set<string>>();
      const recordedNow = new Map<string, Set<string>>();
      const note = (by: Map<string, Set<string>>, incidentId: string, route: string) => {
        const routes = by.get(incidentId) ?? new Set<string>();
        routes.add(route);
        by.set(incidentId, routes);
      };
      for (const e of events) {
        // The message tells the event as it happened, even when it is planned later (a backlog
        // after a restart): open before its resolution, at the event's severity.
        const incident = asAtEvent(e.incident, e.event, e.severity);
        const id = e.incident.incident_id;
        for (const route of config.routes) {
          const told =
            e.told_routes.includes(route.name) || (toldNow.get(id)?.has(route.name) ?? false);
          // A silenced or stale message counts for an event under a silence and for the end
          // only (messaged_routes' rule): a route that heard nothing yet hears the next event.
          const recorded = e.silenced || e.event === "resolved" ? recordedNow : toldNow;
          const messaged =
            e.messaged_routes.includes(route.name) || (recorded.get(id)?.has(route.name) ?? false);
          const event = { ...e, kind: e.kind ?? undefined, told, messaged };
          if (!shouldNotify(route, e.incident, event)) continue;
          const message: NotificationMessage = {
            event: e.event,
            event_key: e.alert_id,
            at: e.event_at.toISOString(),
            severity: e.severity,
            route: route.name,
          };
          const closes = e.event === "resolved" && told;
          const state = stateOf(route, e.event_at, t, { silenced: e.silenced, closes });
          messages.push(await toMessage(route, message, incident, state));
          note(recordedNow, id, route.name);
          if (state === "pending") note(toldNow, id, route.name);
        }
      }
      await outbox.plan(
        messages,
        events.map((e) => e.alert_id),
        new Date(t),
      );
      planned += events.length;
      if (events.length < batchSize) return planned;
    }
  }

  /**
   * The silences holding at `t` (a weekly one only inside a window), read once a pass: an incident
   * is under a silence while the one its latest alert fell under is among them. `covers`: whether
   * one of them covers an incident, matching its stream and every sensor it flagged (a silence
   * created while it was open, before any new alert of it marked it); only where reminders exist,
   * as it is what stops them.
   */
  async function silencesNow(t: number): Promise<Holding> {
    const effective = await silences.effective(0);
    const holding = effective.map(compileSilence).filter((s) => silenceHolds(s, t));
    const held = new Set(holding.map((s) => s.id));
    const reminders = config.routes.some((r) => r.repeatEveryMs !== undefined);
    const coversNow: Covers = function covers(stream, flagged) {
      return holding.some((s) => silenceCoversAll(s, stream, flagged, t));
    };
    return {
      ids: holding.map((s) => s.id),
      covers: reminders && holding.length > 0 ? coversNow : undefined,
      coversNow,
      coversEverything: effective.some(
        (s) => held.has(s.silence_id) && matchersCoverEverything(s.matchers),
      ),
    };
  }

  /**
   * The opening of an incident that opened under a silence and is still open, and taken by
   * nobody, once that silence ended (its end passed, it was expired, its window closed): to each
   * route it matches (its kind and highest severity now) that heard nothing of it, marked
   * `after_silence`. Its key names the
   * incident and the silence, so a pass after a crash or on another instance plans the same
   * message (and `plan` keeps the first); reminders then count from it, as for any opening. While
   * another silence holding now covers the incident it waits (nothing is written) for that one's
   * end.
   */
  async function planAfterSilence(t: number, holding: Holding): Promise<void> {
    if (config.routes.length === 0) return;
    const messages: NewMessage[] = [];
    const candidates = await outbox.unsilencedOpen(holding.ids);
    if (candidates.length === 0) return;
    // Read again: a silence created since the pass read them (and an alert it marked since) is not
    // among `holding`, so its incident looks as if its silence had ended. Each candidate's silence
    // was stored before the query above, so this read knows it.
    const fresh = await silencesNow(now());
    for (const u of candidates) {
      if (fresh.ids.includes(u.silence_id)) continue;
      if (fresh.coversNow(u.incident.stream_id, u.flagged)) continue;
      const ended = new Date(Math.min(u.silence_end.getTime(), t)).toISOString();
      for (const route of config.routes) {
        const event = {
          event: "opened" as const,
          severity: u.incident.max_severity,
          prior_severity: null,
          messaged: u.heard_routes.includes(route.name),
        };
        if (!shouldNotify(route, u.incident, event)) continue;
        const message: NotificationMessage = {
          event: "opened",
          event_key: `${u.incident.incident_id}/${AFTER_SILENCE}/${u.silence_id}`,
          at: ended,
          severity: u.incident.max_severity,
          route: route.name,
          after_silence: { silence_id: u.silence_id, ended_at: ended },
        };
        const state = stateOf(route, new Date(ended), t, { silenced: false });
        messages.push(await toMessage(route, message, u.incident, state));
      }
    }
    if (messages.length > 0) await outbox.plan(messages, [], new Date(t), true);
  }

  /** The message of a feed condition's event for the route. */
  async function conditionMessage(
    route: NotifyRoute,
    c: ConditionToPlan,
    event: ConditionMessage["event"],
  ): Promise<NewMessage> {
    const opened = event === "condition_opened";
    const message: ConditionMessage = {
      event,
      event_key: `condition/${c.condition_id}/${opened ? "opened" : "resolved"}`,
      at: (opened ? c.since : (c.ended_at as Date)).toISOString(),
      route: route.name,
    };
    const snapshot: ConditionSnapshot = {
      condition_id: c.condition_id,
      kind: c.kind,
      stream_id: c.stream_id,
      sensor: c.sensor,
      subject: c.subject,
      since: c.since.toISOString(),
      ended_at: opened ? null : (c.ended_at?.toISOString() ?? null),
      detail: c.detail,
    };
    return {
      message_id: await messageId(message.event_key, route.name),
      route: route.name,
      event_key: message.event_key,
      incident_id: null,
      condition_id: c.condition_id,
      event,
      event_at: new Date(message.at),
      severity: null,
      body: conditionBody(route.webhook.format, message, snapshot, config.consoleUrl),
      state: "pending",
    };
  }

  /**
   * The feed conditions' messages (`feed_conditions.ts`, recorded by the feed watch): each open
   * one's opening to every route it matches ({@link conditionMatches}) that holds none, unless a
   * silence holding now covers it (its stream, and the sensor in doubt; the engine out of reach:
   * a silence over everything), which it then waits for, judged again each pass, so a planned
   * stop under a silence pages nobody and a line still dark when the silence ends pages then. An
   * ended one's end to every route its opening may have reached; an opening never tried by then
   * is superseded. No `max_age` (a condition is what holds now) and no reminders.
   */
  async function planFeed(t: number, holding: Holding): Promise<void> {
    if (config.routes.length === 0) return;
    await outbox.supersedeEndedOpenings(new Date(t));
    const names = config.routes.map((r) => r.name);
    let after: ConditionToPlan | undefined;
    for (;;) {
      const page = await outbox.conditionsToPlan(batchSize, new Date(t), names, after);
      await planConditions(page, t, holding);
      if (page.length < batchSize) return;
      after = page.at(-1);
    }
  }

  /** The messages of one page of conditions (see {@link planFeed}). */
  async function planConditions(page: ConditionToPlan[], t: number, holding: Holding) {
    const messages: NewMessage[] = [];
    for (const c of page) {
      for (const route of config.routes) {
        if (c.ended_at === null) {
          if (c.opened_routes.includes(route.name) || !conditionMatches(route, c)) continue;
          const covered =
            c.stream_id === null
              ? holding.coversEverything
              : holding.coversNow(c.stream_id, c.sensor === null ? [] : [c.sensor]);
          if (!covered) messages.push(await conditionMessage(route, c, "condition_opened"));
        } else if (c.told_routes.includes(route.name) && !c.resolved_routes.includes(route.name)) {
          messages.push(await conditionMessage(route, c, "condition_resolved"));
        }
      }
    }
    if (messages.length > 0) await outbox.plan(messages, [], new Date(t));
  }

  /**
   * The current reminder of each open incident a route with `repeat_every` was told about; one
   * that a silence covers now is written `silenced`, not sent.
   */
  async function planReminders(t: number, holding: Holding): Promise<void> {
    const { covers } = holding;
    const reminding = config.routes.filter((r) => r.repeatEveryMs !== undefined);
    for (const route of reminding) {
      const every = route.repeatEveryMs as number;
      const messages: NewMessage[] = [];
      // An incident's sensors are read only while some silence may cover it.
      for (const open of await outbox.openIncidentsFor(
        route.name,
        covers !== undefined,
        holding.ids,
      )) {
        // Only the latest period's reminder: after downtime, one message, not a burst.
        const n = Math.floor((t - open.first_at.getTime()) / every);
        if (n < 1) continue;
        const message: NotificationMessage = {
          event: "still_open",
          event_key: `${open.incident.incident_id}/still_open/${n}`,
          at: new Date(open.first_at.getTime() + n * every).toISOString(),
          severity: open.incident.max_severity,
          route: route.name,
        };
        const silenced = covers?.(open.incident.stream_id, open.flagged) ?? false;
        const state = stateOf(route, new Date(message.at), t, { silenced });
        messages.push(await toMessage(route, message, open.incident, state));
      }
      if (messages.length > 0) await outbox.plan(messages, [], new Date(t));
    }
  }

  async function record(route: NotifyRoute, m: ClaimedMessage): Promise<void> {
    // A claim whose outcome was never recorded (the process stopped during it) counts as an
    // attempt, but the last one does not end the message unheard: one more try is allowed.
    if (m.attempts > route.retry.attempts + 1) {
      await outbox.dead(
        m.message_id,
        {
          status: null,
          error:
            "retry.attempts used up: the last attempt's outcome was never recorded, or NOTIFY_CONFIG lowered retry.attempts",
        },
        new Date(now()),
      );
      log?.warn("notification dead-lettered", { route: route.name, message_id: m.message_id });
      return;
    }
    const result = await sendNotification({
      fetch: fetchImpl,
      url: route.webhook.url,
      body: m.body,
      messageId: m.message_id,
      secret: route.webhook.secret,
      timeoutMs: route.webhook.timeoutMs,
      now: now(),
      signal: lifetime.signal,
    });
    const at = new Date(now());
    if (result.outcome === "abandoned") return;
    if (result.outcome === "delivered") {
      await outbox.delivered(m.message_id, result.status, at);
      log?.debug("notification delivered", {
        route: route.name,
        message_id: m.message_id,
        event: m.event,
        incident_id: m.incident_id,
        condition_id: m.condition_id,
        attempts: m.attempts,
      });
      return;
    }
    const details = {
      route: route.name,
      message_id: m.message_id,
      incident_id: m.incident_id,
      condition_id: m.condition_id,
      attempts: m.attempts,
      status: result.status,
      error: result.error,
    };
    if (result.outcome === "dead" || m.attempts >= route.retry.attempts) {
      await outbox.dead(m.message_id, result, at);
      log?.warn("notification dead-lettered", details);
      return;
    }
    const wait = backoffMs(
      route.retry,
      m.attempts,
      result.outcome === "retry" ? result.retryAfterMs : 0,
      random,
    );
    await outbox.retryLater(m.message_id, result, new Date(at.getTime() + wait));
    log?.info("notification failed, retrying", { ...details, retry_in_ms: wait });
  }

  function deliver(route: NotifyRoute, m: ClaimedMessage): void {
    inFlight.set(route.name, (inFlight.get(route.name) ?? 0) + 1);
    const running = record(route, m)
      .catch((error) =>
        // The lease runs out and the message is tried again on a later pass.
        log?.warn("notification outcome not recorded", {
          route: route.name,
          message_id: m.message_id,
          error: (error as Error).message,
        }),
      )
      .finally(() => {
        inFlight.set(route.name, (inFlight.get(route.name) ?? 1) - 1);
        deliveries.delete(running);
        // A finished delivery may free a slot or unblock the incident's next message.
        wake?.();
      });
    deliveries.add(running);
  }

  async function dispatchDue(t: Date, holding: Holding): Promise<void> {
    const { covers } = holding;
    // A reminder already waiting (its receiver down) stops too once a silence covers its incident.
    const covered = covers
      ? (await outbox.waitingReminders(t))
          .filter((r) => covers(r.stream_id, r.flagged))
          .map((r) => r.message_id)
      : [];
    await outbox.settle([...routes.keys()], t, holding.ids, covered);
    for (const route of config.routes) {
      if (stopping) return;
      const free = route.concurrency - (inFlight.get(route.name) ?? 0);
      const lease = new Date(t.getTime() + route.webhook.timeoutMs + LEASE_MARGIN_MS);
      for (const m of await outbox.claim(route.name, free, t, lease)) deliver(route, m);
    }
  }

  /** Closes the incidents their engine lost (their `resolved` events are planned next). */
  async function closeSuperseded(t: number): Promise<void> {
    if (t - supersededAt < supersedeEveryMs) return;
    supersededAt = t;
    for (const c of await closeSupersededIncidents(
      options.database,
      new Date(t - supersedeAfterMs),
    )) {
      log?.info("incident closed: superseded", {
        incident_id: c.incident_id,
        superseded_by: c.superseded_by,
        stream_id: c.stream_id,
      });
    }
  }

  /**
   * One pass: close superseded incidents (once a minute), plan events, plan the openings of
   * incidents whose silence ended, plan reminders, start due deliveries (not waiting for them).
   */
  async function tick(): Promise<void> {
    // Its failure must never hold back the notifications themselves: the rest of the pass goes
    // on. The database out of reach then fails the pass (logged as the passes' outage); any other
    // failure is logged apart.
    let supersedeFailed: Error | undefined;
    await closeSuperseded(now()).catch((error) => {
      supersedeFailed = error as Error;
    });
    const holding = await silencesNow(now());
    await planEvents(holding);
    await planFeed(now(), holding);
    // Read after planning: a message planned now is due now.
    const t = now();
    await planAfterSilence(t, holding);
    await planReminders(t, holding);
    await dispatchDue(new Date(t), holding);
    if (supersedeFailed) {
      if (isDatabaseOutage(supersedeFailed)) throw supersedeFailed;
      log?.warn("closing superseded incidents failed", { error: supersedeFailed.message });
    }
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });
  }

  // The failing passes since the last one that worked: when they began, the failures warned of
  // (by `failureKey`) and when the last warning was.
  let failing: { since: number; warned: Set<string>; warnedAt: number } | undefined;

  /**
   * One warning when passes start failing, one more each time they fail differently (the
   * database back, but the role's grants lost), one every `failureRewarnMs` while they keep
   * failing, and one line when they work again; each other failed pass is at debug. A database
   * down for an hour would otherwise log a line per pass (one a second).
   */
  function passFailed(error: unknown): void {
    const root = rootError(error);
    const fields: Record<string, unknown> = { error: (error as Error)?.message ?? String(error) };
    if (root !== error) fields.cause = root.message;
    const key = failureKey(root);
    const t = performance.now();
    if (failing === undefined) {
      failing = { since: t, warned: new Set([key]), warnedAt: t };
      log?.warn("notification pass failed; retried each pass until it works again", fields);
      return;
    }
    fields.failing_ms = Math.round(t - failing.since);
    if (!failing.warned.has(key)) {
      failing.warned.add(key);
      failing.warnedAt = t;
      log?.warn(
        "notification passes fail differently now; retried each pass until it works again",
        fields,
      );
    } else if (t - failing.warnedAt >= failureRewarnMs) {
      failing.warnedAt = t;
      log?.warn("notification passes still fail; retried each pass until it works again", fields);
    } else log?.debug("notification pass failed", fields);
  }

  async function run(): Promise<void> {
    while (!stopping) {
      passing = true;
      try {
        await tick();
        if (failing !== undefined) {
          log?.info("notification passes work again", {
            failing_ms: Math.round(performance.now() - failing.since),
          });
          failing = undefined;
        }
      } catch (error) {
        passFailed(error);
      } finally {
        passing = false;
      }
      if (!stopping) await pause(pollMs);
    }
  }

  return {
    /** Starts the passes (once). */
    start(): void {
      // Also with no routes: events are then marked planned with no message, so a route added
      // months later starts from that day instead of sending the whole history.
      loop ??= run();
    },
    /**
     * Stops passing and waits for the pass and deliveries in flight until `deadline` aborts, then
     * abandons them: a pass held in the database (a lock, a query slow on a backlog) is left to
     * the database's close, which ends its query, and deliveries' leases run out (the next start
     * delivers them again under the same id). Without a deadline it waits for both.
     */
    async stop(deadline?: AbortSignal): Promise<void> {
      stopping = true;
      wake?.();
      // Between passes the loop ends at once; a pass running is given until the deadline. A
      // pass held in a query kept a stopped backend alive for minutes, until the query ended.
      if (loop && !(await settlesBefore(loop, passing ? deadline : undefined))) {
        log?.warn("notification pass abandoned at the shutdown deadline", {
          detail: "its query ends when the database closes",
        });
      }
      if (deadline) await settlesBefore(Promise.all([...deliveries]), deadline);
      lifetime.abort(new Error("notifications stopping"));
      await Promise.all([...deliveries]);
    },
    tick,
    /** The routes and the outbox's state, for the Health page. */
    async status(): Promise<NotifyStatus> {
      const s = await outbox.status(
        new Date(now()),
        STATUS_WINDOW_MS,
        config.routes.map((r) => r.name),
      );
      return {
        ...s,
        configured: config.routes.map((r) => ({
          name: r.name,
          format: r.webhook.format,
          target: targetOf(r),
          repeat_every_ms: r.repeatEveryMs ?? null,
        })),
        window_ms: STATUS_WINDOW_MS,
      };
    },
  };
}
