// Route matching: globs, severity, kind, and which incident events a route hears about.
import assert from "node:assert/strict";
import { test } from "node:test";
import { routeMatches, shouldNotify, streamGlob } from "./route_match.ts";

test("streamGlob matches whole ids with * and ? and takes everything else literally", () => {
  assert.ok(streamGlob("line-*")("line-12"));
  assert.ok(!streamGlob("line-*")("xline-12"));
  assert.ok(streamGlob("p?mp")("pump"));
  assert.ok(!streamGlob("a.b")("axb"));
  assert.ok(streamGlob("a.(b)+")("a.(b)+"));
  assert.ok(streamGlob("a\\b")("a\\b"), "a backslash is itself, as before");
});

// A guard, not a measure: a backtracking matcher took 46 s on the first id (the backend's event
// loop held all that time); a linear one answers at once.
test("a route's glob answers at once on a long stream id a producer chose", {
  timeout: 20_000,
}, () => {
  const id = `${"-".repeat(127)}y`;
  const route = { match: { stream: "*-*-*-*-*-*-pump" } };
  assert.equal(routeMatches(route, { stream_id: id, kind: "process" }, 10), false);
  assert.equal(
    routeMatches(route, { stream_id: `${"-".repeat(123)}pump`, kind: "process" }, 10),
    true,
  );
});

test("routeMatches treats absent matchers as any and a missing severity as below every minimum", () => {
  const incident = { stream_id: "line-1", kind: "process" as const };
  assert.ok(routeMatches({ match: {} }, incident, null));
  assert.ok(
    routeMatches({ match: { stream: "line-*", min_severity: 6, kind: "process" } }, incident, 6),
  );
  assert.ok(!routeMatches({ match: { min_severity: 6 } }, incident, 5.9));
  assert.ok(!routeMatches({ match: { min_severity: 0 } }, incident, null));
  assert.ok(!routeMatches({ match: { kind: "sensor" } }, incident, 9));
  assert.ok(!routeMatches({ match: { stream: "press-*" } }, incident, 9));
});

test("shouldNotify: opened at its severity, updated only on a rise, resolved to routes told or matched at the peak", () => {
  const route = { match: { min_severity: 10 } };
  const incident = { stream_id: "s", kind: "process" as const, max_severity: 12 };
  const event = (
    e: "opened" | "updated" | "resolved",
    severity: number | null,
    prior: number | null,
    more: { told?: boolean; messaged?: boolean } = {},
  ) => shouldNotify(route, incident, { event: e, severity, prior_severity: prior, ...more });
  assert.ok(event("opened", 11, null));
  assert.ok(!event("opened", 8, null));
  assert.ok(
    event("opened", 11, null, { messaged: false }),
    "its update died: the opening is first",
  );
  assert.ok(
    !event("opened", 11, null, { messaged: true }),
    "late, after an update was its opening",
  );
  assert.ok(event("updated", 12, 8), "crossing the minimum");
  assert.ok(event("updated", 12, 11), "a rise");
  assert.ok(!event("updated", 11, 12), "a fall");
  assert.ok(!event("updated", 12, 12), "no change");
  assert.ok(!event("updated", null, null));
  assert.ok(event("resolved", 0, 12, { told: true }), "a told route hears it ended");
  assert.ok(event("resolved", 0, 12, { messaged: true }), "written silenced when all were");
  assert.ok(event("resolved", 0, 12), "never told, but matched at the incident's peak");
  assert.ok(
    !shouldNotify(
      route,
      { ...incident, max_severity: 9 },
      { event: "resolved", severity: 9, prior_severity: 9, told: false, messaged: false },
    ),
    "never told and never matched",
  );
});

test("shouldNotify tells a route of an update when the incident came to match it while open", () => {
  const route = { match: { kind: "process" as const, min_severity: 10 } };
  const incident = { stream_id: "s", kind: "process" as const, max_severity: 20 };
  const update = (more: { messaged?: boolean; kind?: "process" | "sensor"; severity?: number }) =>
    shouldNotify(route, incident, {
      event: "updated",
      severity: more.severity ?? 20,
      prior_severity: 20,
      kind: more.kind ?? "process",
      messaged: more.messaged,
    });
  // A sensor fault that became a process fault at the same severity: not a rise, but the
  // route has heard nothing of it yet.
  assert.ok(update({ messaged: false }));
  assert.ok(!update({ messaged: true }), "a route that has heard of it waits for a rise");
  assert.ok(!update({ messaged: false, kind: "sensor" }), "still not the route's kind");
  assert.ok(!update({ messaged: false, severity: 9 }), "below the route's minimum now");
  const late = { severity: 20, prior_severity: null, after_resolution: true };
  assert.ok(!shouldNotify(route, incident, { event: "opened", ...late }), "opened after the end");
});
