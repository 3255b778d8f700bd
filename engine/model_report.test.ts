import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as v from "valibot";
import { errorBodySchema } from "../contracts/error.ts";
import { type ModelMetadata, parseModelMetadata } from "../contracts/model.ts";
import type { RetrainReport } from "../contracts/models_api.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { ModelRegistry } from "./infer/registry.ts";
import { retrainReportPath } from "./retrain/retrain_report.ts";

const TOKEN = "admin-token-0123456789";

/** A report as models/retrain/retrain.ts writes it (trimmed), with fields the contract does not list. */
function reportOf(meta: ModelMetadata, candidate: string): RetrainReport {
  const metrics = (version: string, fa: number) => ({
    version,
    recent: {
      windows: 533,
      alarmWindows: 4,
      incidents: 1,
      falseAlarmFramesPer10k: fa,
      falseIncidentsPer10k: 18.7,
    },
    confirmed: { incidents: 0, detected: 0, recall: null },
    injected: { spike: { events: 40, detected: 37, recall: 0.925, found: [0, 1, 2] } },
  });
  return {
    model: meta.name,
    candidate_version: candidate,
    active_version: meta.version,
    decision: "held",
    reasons: ["falseAlarmFramesPer10k: 80 > 76"],
    promote: "manual",
    activated: null,
    decided_at: "2026-12-05T01:12:54.659Z",
    criteria: [
      { name: "falseAlarmFramesPer10k", active: 75, candidate: 80, limit: 76, pass: false },
      {
        name: "confirmedIncidentRecall",
        active: null,
        candidate: null,
        limit: null,
        pass: true,
        note: "nothing to measure",
      },
    ],
    tolerances: { injectedRecall: 0.05 },
    models: { active: metrics(meta.version, 75), candidate: metrics(candidate, 80) },
    data: {
      history_dir: "/data/history/boiler",
      frames_read: 2784,
      time_range: { from: "2026-12-05T00:56:02.770Z", to: "2026-12-05T01:07:38.580Z" },
      usable_frames: 2685,
      false_positive_frames_used: 12,
      excluded_read: { incident_unjudged: 99 },
      excluded_before_recording: { silenced: 30 },
      training: {
        frames: 2107,
        runs: 3,
        from: "2026-12-05T00:56:02.770Z",
        to: "2026-12-05T01:05:24.327Z",
      },
      recent: {
        frames: 537,
        runs: 1,
        from: "2026-12-05T01:05:24.577Z",
        to: "2026-12-05T01:07:38.580Z",
      },
      confirmed_incidents: [],
      injected: { per_kind: 40, seed: 1, events: 199 },
    },
  };
}

// An in-process engine on a registry in a temporary folder: one version trained (no report),
// the same graph written again as a retrained candidate (with a report), and two candidates whose
// reports are broken.
describe("GET /models/{name}/retrains/{version} on a single engine", () => {
  let fixture: ModelFixture;
  let sink: AlertSink;
  let engine: TestEngine;
  let dir: string;
  let trained: ModelMetadata;
  let report: RetrainReport;
  const CANDIDATE = "1.1.0+retrained";

  before(async () => {
    fixture = await trainFixtureModel({ features: 12, name: "boiler", frames: 300 });
    dir = await mkdtemp(join(tmpdir(), "retrain-report-"));
    const registry = new ModelRegistry(dir);
    const onnx = await readFile(join(fixture.dir, "boiler.onnx"));
    trained = parseModelMetadata(
      JSON.parse(await readFile(join(fixture.dir, "boiler.json"), "utf8")),
    );
    await registry.write(onnx, trained);
    // The same graph under other version strings: versions of their own to the registry.
    for (const version of [CANDIDATE, "1.2.0+not-json", "1.3.0+off-contract"]) {
      await registry.write(onnx, { ...trained, version });
    }
    report = reportOf(trained, CANDIDATE);
    await writeFile(retrainReportPath(dir, "boiler", CANDIDATE), JSON.stringify(report));
    await writeFile(retrainReportPath(dir, "boiler", "1.2.0+not-json"), '{"decision": "held",');
    await writeFile(
      retrainReportPath(dir, "boiler", "1.3.0+off-contract"),
      JSON.stringify({ ...report, decision: "maybe" }),
    );
    sink = await startAlertSink();
    engine = await startTestEngine({ dir, name: "boiler" }, sink, { ADMIN_TOKEN: TOKEN });
  });
  after(async () => {
    await engine?.stop();
    await sink?.close();
    await fixture?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** `token` null: no authorization header. */
  const get = (path: string, token: string | null = TOKEN) =>
    Promise.resolve(
      engine.engine.app.request(path, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      }),
    );
  const reportUrl = (version: string, name = "boiler") =>
    `/models/${encodeURIComponent(name)}/retrains/${encodeURIComponent(version)}`;
  async function expectError(res: Response, status: number, code: string) {
    const body = await res.json();
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(v.parse(errorBodySchema, body).error, code);
    return body as { message: string };
  }

  test("the route answers a retrained version's report as stored, fields beyond the contract included", async () => {
    const res = await get(reportUrl(CANDIDATE));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), report);
  });

  test("the route answers 404 report_not_found for the version training wrote", async () => {
    await expectError(await get(reportUrl(trained.version)), 404, "report_not_found");
  });

  test("the route answers 404 version_not_found and model_not_found, and 400 for a version that is no safe path segment", async () => {
    await expectError(await get(reportUrl("9.9.9")), 404, "version_not_found");
    await expectError(await get(reportUrl(CANDIDATE, "mixer")), 404, "model_not_found");
    await expectError(await get(reportUrl("../boiler/ACTIVE.json")), 400, "invalid_version");
    await expectError(await get(reportUrl("1..2")), 400, "invalid_version");
  });

  test("the route answers the report of a version the registry pruned since (the report stays)", async () => {
    const pruned = "1.0.5+pruned";
    const onnx = await readFile(join(fixture.dir, "boiler.onnx"));
    const keepOne = new ModelRegistry(dir, { keepVersions: 1 });
    await keepOne.write(onnx, { ...trained, version: pruned });
    const prunedReport = reportOf(trained, pruned);
    await keepOne.putReport("boiler", pruned, prunedReport);
    const at = (Date.now() - 2 * 24 * 60 * 60_000) / 1000;
    await utimes(join(dir, "boiler", pruned), at, at);
    const written = await keepOne.write(onnx, { ...trained, version: "1.0.6+next" });
    assert.deepEqual(written.pruned, [pruned], "pruned: over the kept count and over a day old");
    const res = await get(reportUrl(pruned));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), prunedReport);
    // A version without a report is told apart as before.
    await expectError(await get(reportUrl("1.0.6+next")), 404, "report_not_found");
  });

  test("the route answers 401 without the admin token, or with another", async () => {
    await expectError(await get(reportUrl(CANDIDATE), null), 401, "unauthorized");
    await expectError(await get(reportUrl(CANDIDATE), "not-the-admin-token"), 401, "unauthorized");
  });

  test("the route answers 422 report_invalid for a report that is not JSON or breaks the contract", async () => {
    const notJson = await expectError(
      await get(reportUrl("1.2.0+not-json")),
      422,
      "report_invalid",
    );
    assert.match(notJson.message, /boiler@1\.2\.0\+not-json/);
    const off = await expectError(
      await get(reportUrl("1.3.0+off-contract")),
      422,
      "report_invalid",
    );
    assert.match(off.message, /decision/);
  });
});
