// Retraining and its promotion gate on real histories, real training and real ONNX models: promoted when not worse, held when worse.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ModelRegistry } from "../../engine/infer/mod.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { Rng } from "../signal/mod.ts";
import { NAME, plantFrames, recordHistory, trainInto } from "./_test/plant_history.ts";
import { decide, type ModelMetrics, signTestP } from "./gate.ts";
import type { RetrainReport } from "./report.ts";
import { RetrainError, reportPath, retrain } from "./retrain.ts";

const settings = { threshold: 0.9, confirmK: 2, confirmN: 3, quietWindows: 3 };
const log = createLogger({ service: "test", level: "silent" });
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function scenario(
  body: (dirs: { registry: string; history: string }) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "retrain-"));
  try {
    await body({ registry: join(root, "models"), history: join(root, "history", NAME) });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const run = (dirs: { registry: string; history: string }, promote: "auto" | "manual" = "auto") =>
  retrain({
    model: NAME,
    historyDir: dirs.history,
    registryDir: dirs.registry,
    promote,
    settings,
    device: "cpu",
    eventsPerKind: 16,
    log,
  });

/** `run` with the history read from `historyDir`. */
const retrainAt = (dirs: { registry: string }, historyDir: string) =>
  retrain({
    model: NAME,
    historyDir,
    registryDir: dirs.registry,
    promote: "auto",
    settings,
    device: "cpu",
    eventsPerKind: 16,
    log,
  });

describe("retrain", () => {
  test("a candidate keeps the active version's running condition", async () => {
    await scenario(async (dirs) => {
      const running = { feature: "feature_0", op: ">" as const, value: -1e9 };
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true, running);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      const report = await run(dirs, "manual");
      const candidate = report.candidate_version as string;
      const meta = JSON.parse(
        await readFile(join(dirs.registry, NAME, candidate, `${NAME}.json`), "utf8"),
      );
      assert.deepEqual(meta.running, running);
      assert.equal(meta.training.running.condition, "feature_0>-1000000000");
    });
  });

  test("a candidate better than the active version is promoted and activated, its report beside it", async () => {
    await scenario(async (dirs) => {
      // The active version learnt two sensors at levels they have since left: it alarms on them.
      const old = plantFrames(1200, 1, (_, f, std) => {
        f[2] += 40 * std[2];
        f[5] -= 40 * std[5];
      });
      const { meta: active } = await trainInto(dirs.registry, old, true);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      const report = await run(dirs);
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
      assert.ok(
        report.models.active.recent.falseAlarmFramesPer10k >
          report.models.candidate!.recent.falseAlarmFramesPer10k,
      );
      const registry = new ModelRegistry(dirs.registry);
      assert.equal(await registry.activeVersion(NAME), report.candidate_version);
      const last = (await registry.activations(NAME)).at(-1)!;
      assert.equal(last.from, active.version);
      assert.equal(last.by, "retrain");
      const saved = JSON.parse(
        await readFile(reportPath(dirs.registry, NAME, report.candidate_version), "utf8"),
      ) as RetrainReport;
      assert.equal(saved.decision, "promoted");
      // Written before the pointer moved, then again with the activation it led to.
      assert.deepEqual(saved.activated, last);
      assert.equal(saved.data.training.frames + saved.data.recent.frames, 1496);
      assert.equal(saved.data.recent.frames, 300);
      // The last window_size - 1 frames were still waiting for their windows when recording stopped.
      assert.ok(saved.data.recent.from > saved.data.training.to);
      assert.equal(saved.data.injected.events, 5 * 16);
    });
  });

  test("a candidate is held, detection not measured, when no recent run is long enough to inject anomalies into", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      // The older 80 %: every sensor has frequent 10-30 std outliers, so the candidate learns a
      // normal range wide enough to miss the injected anomalies; the recent stretch is as usual.
      const rng = new Rng(7);
      const frames = plantFrames(3000, 2, (t, f, std) => {
        if (t >= 2400) return;
        for (let i = 0; i < f.length; i++) {
          if (rng.uniform() < 0.05)
            f[i] += (rng.uniform() < 0.5 ? -1 : 1) * (10 + 20 * rng.uniform()) * std[i];
        }
      });
      // Runs of 100 frames, one in two kept: no recent run reaches 100 + 10 + 5 + 5 = 120.
      await recordHistory(dirs.history, active.version, frames, undefined, {
        everyN: 2,
        runFrames: 100,
      });
      const report = await run(dirs);
      assert.equal(report.data.injected.events, 0);
      assert.equal(report.decision, "held");
      for (const kind of ["spike", "level_shift", "drift", "noise_burst", "stuck"]) {
        assert.ok(
          report.reasons.some((r) =>
            r.startsWith(
              `injectedRecall.${kind}: detection not measured: no recent run of >= 120 frames`,
            ),
          ),
          report.reasons.join("\n"),
        );
      }
      assert.equal(report.activated, null);
      assert.equal(await new ModelRegistry(dirs.registry).activeVersion(NAME), active.version);
    });
  });

  test("retraining an unchanged history ends with nothing new to train on and leaves the active version's report as it was", async () => {
    await scenario(async (dirs) => {
      const old = plantFrames(1200, 1, (_, f, std) => {
        f[2] += 40 * std[2];
      });
      const { meta: active } = await trainInto(dirs.registry, old, true);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      const first = await run(dirs);
      assert.equal(first.decision, "promoted", first.reasons.join("; "));
      const path = reportPath(dirs.registry, NAME, first.candidate_version);
      const before = await readFile(path, "utf8");
      // Nothing recorded since: the same history trains the same graph, now the active version.
      await assert.rejects(
        run(dirs),
        (e: unknown) =>
          e instanceof RetrainError &&
          e.message.includes(
            `nothing new to train on: the candidate is the active version ${first.candidate_version}`,
          ),
      );
      assert.equal(await readFile(path, "utf8"), before);
      assert.equal(
        await new ModelRegistry(dirs.registry).activeVersion(NAME),
        first.candidate_version,
      );
    });
  });

  for (const promote of ["auto", "manual"] as const) {
    test(`retrain (${promote}) holds a promoted candidate when an operator activated another version during the run, and that activation stands`, async () => {
      await scenario(async (dirs) => {
        const old = plantFrames(1200, 1, (_, f, std) => {
          f[2] += 40 * std[2];
          f[5] -= 40 * std[5];
        });
        const { meta: active } = await trainInto(dirs.registry, old, true);
        const { meta: rollback } = await trainInto(dirs.registry, plantFrames(1200, 3), false);
        await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
        /** The real registry; bob rolls back once the gate has decided (its report first stored). */
        class RollbackDuringRun extends ModelRegistry {
          armed = true;
          override async putReport(name: string, version: string, report: unknown) {
            await super.putReport(name, version, report);
            if (!this.armed) return;
            this.armed = false;
            await new ModelRegistry(dirs.registry).activate(name, rollback.version, {
              by: "bob",
              reason: "rollback during the run",
            });
          }
        }
        const report = await retrain({
          model: NAME,
          historyDir: dirs.history,
          registryDir: dirs.registry,
          registry: new RollbackDuringRun(dirs.registry),
          promote,
          settings,
          device: "cpu",
          eventsPerKind: 16,
          log,
        });
        assert.equal(
          report.active_version,
          active.version,
          "judged against the version active then",
        );
        // Under manual too: a candidate judged against a version no longer served is not offered
        // as ready.
        assert.equal(report.decision, "held");
        assert.equal(report.activated, null);
        assert.match(
          report.reasons[0],
          new RegExp(
            `^the active version changed during the run: the gate compared the candidate with ${literal(active.version)}, the registry names ${literal(rollback.version)} since \\(activated by bob at [^)]+: rollback during the run\\); not activated$`,
          ),
        );
        assert.ok(report.reasons.length > 1, "the gate's own reasons follow");
        const registry = new ModelRegistry(dirs.registry);
        assert.equal(await registry.activeVersion(NAME), rollback.version);
        const last = (await registry.activations(NAME)).at(-1)!;
        assert.deepEqual(
          [last.version, last.by],
          [rollback.version, "bob"],
          "no record after bob's",
        );
        const saved = JSON.parse(
          await readFile(reportPath(dirs.registry, NAME, report.candidate_version), "utf8"),
        ) as RetrainReport;
        assert.deepEqual([saved.decision, saved.reasons[0]], ["held", report.reasons[0]]);
      });
    });
  }

  test("retrain puts the operator's version back when it was activated in the instant the candidate was", async () => {
    await scenario(async (dirs) => {
      const old = plantFrames(1200, 1, (_, f, std) => {
        f[2] += 40 * std[2];
        f[5] -= 40 * std[5];
      });
      const { meta: active } = await trainInto(dirs.registry, old, true);
      const { meta: rollback } = await trainInto(dirs.registry, plantFrames(1200, 3), false);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      const operator = new ModelRegistry(dirs.registry);
      // The registry's own seam: bob's activation lands once the candidate verified, before its
      // record and pointer are written.
      const registry = new ModelRegistry(dirs.registry, {
        hooks: {
          async activateVerified(name, version) {
            if (version === rollback.version) return;
            await operator.activate(name, rollback.version, { by: "bob", reason: "rollback" });
          },
        },
      });
      const report = await retrain({
        model: NAME,
        historyDir: dirs.history,
        registryDir: dirs.registry,
        registry,
        promote: "auto",
        settings,
        device: "cpu",
        eventsPerKind: 16,
        log,
      });
      assert.equal(report.decision, "held");
      assert.equal(report.activated, null);
      assert.match(report.reasons[0], /^the active version changed during the run: .*; put back$/);
      assert.equal(await operator.activeVersion(NAME), rollback.version);
      const records = (await operator.activations(NAME)).slice(-3);
      assert.deepEqual(
        records.map((a) => [a.from, a.version, a.by]),
        [
          [active.version, rollback.version, "bob"],
          [rollback.version, report.candidate_version, "retrain"],
          [report.candidate_version, rollback.version, "retrain"],
        ],
      );
    });
  });

  test("with RETRAIN_PROMOTE=manual a promoted candidate is left ready, not active", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(
        dirs.registry,
        plantFrames(1200, 1, (_, f, std) => {
          f[2] += 40 * std[2];
        }),
        true,
      );
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      const report = await run(dirs, "manual");
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
      assert.equal(report.activated, null);
      const registry = new ModelRegistry(dirs.registry);
      assert.equal(await registry.activeVersion(NAME), active.version);
      assert.ok((await registry.model(NAME)).versions.includes(report.candidate_version));
    });
  });

  test("a candidate trained on a history the plant has since left is held for its false alarms", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      // The older 80 % of the history had every sensor elsewhere; the recent stretch is as the active version knows it.
      await recordHistory(
        dirs.history,
        active.version,
        plantFrames(1500, 2, (t, f, std) => {
          if (t < 1200) for (let i = 0; i < f.length; i++) f[i] += 40 * std[i];
        }),
      );
      const report = await run(dirs);
      assert.equal(report.decision, "held");
      assert.match(report.reasons.join("\n"), /falseAlarmFramesPer10k: candidate/);
      assert.equal(await new ModelRegistry(dirs.registry).activeVersion(NAME), active.version);
    });
  });

  test("a sensor stuck for part of the history is not learnt as normal: its stuck frames are cut out of training, unnoticed or tagged by its incident", async () => {
    const stuckFrom = 300;
    const stuckTo = 900;
    const history = () =>
      plantFrames(
        2500,
        2,
        (() => {
          let held = 0;
          return (t: number, f: Float32Array) => {
            if (t === stuckFrom) held = f[3];
            if (t >= stuckFrom && t < stuckTo) f[3] = held;
          };
        })(),
      );
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      // Not noticed: the stuck stretch is recorded as normal. The sensor repeats its reading
      // exactly there, which a sensor the active version checks for being stuck never does.
      await recordHistory(dirs.history, active.version, history());
      const report = await run(dirs);
      assert.deepEqual(report.data.stuck_left_out.sensors, [
        { feature: 3, name: "feature_3", frames: stuckTo - stuckFrom, action: "left_out" },
      ]);
      assert.equal(report.data.stuck_left_out.frames, stuckTo - stuckFrom);
      // So the candidate still checks it, and finds injected stuck events on it as well.
      const check = report.criteria.find((c) => c.name === "stuckDetection")!;
      assert.deepEqual([check.candidate, check.pass], [0, true]);
      assert.ok(report.criteria.find((c) => c.name === "injectedRecall.stuck")!.pass);
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
    });
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      // The engine flagged it: its incident's frames are tagged and left out of training.
      await recordHistory(dirs.history, active.version, history(), (t) =>
        t >= stuckFrom + 4 && t < stuckTo ? [3] : [],
      );
      const report = await run(dirs);
      assert.ok((report.data.excluded_read.incident_unjudged ?? 0) >= stuckTo - stuckFrom - 4);
      const stuck = report.criteria.find((c) => c.name === "injectedRecall.stuck")!;
      assert.ok(stuck.pass, JSON.stringify(stuck));
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
    });
  });

  test("a sensor stuck through the whole lookback is held by its flat line and its lost stuck check, the report naming it; the same history with the sensor working is promoted", async () => {
    const history = (stuck: boolean) =>
      plantFrames(
        1500,
        2,
        (() => {
          let held = 0;
          return (t: number, f: Float32Array) => {
            if (!stuck) return;
            if (t === 0) held = f[3];
            f[3] = held;
          };
        })(),
      );
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, history(true));
      const report = await run(dirs);
      assert.equal(report.decision, "held");
      // The scores alone would promote it: both models meet the same flat recent stretch, and the
      // candidate, having learnt the flat line, raises no alarm there.
      assert.deepEqual(
        report.criteria.filter((c) => !c.pass).map((c) => c.name),
        ["flatSensors", "stuckDetection"],
      );
      assert.equal(report.reasons.length, 2);
      assert.match(
        report.reasons[0],
        /^flatSensors: feature_3 \(feature 3\): flat in the training stretch \(1st\.\.99th percentile spread 0, under 1 % of the [\d.]+ the active version learnt\): a stuck sensor would be learnt as normal$/,
      );
      assert.match(
        report.reasons[1],
        /^stuckDetection: the candidate does not check feature_3 \(feature 3\) for being stuck/,
      );
      // Stuck in every training frame: too many to cut out.
      assert.deepEqual(
        report.data.stuck_left_out.sensors.map((x) => [x.name, x.action]),
        [["feature_3", "kept"]],
      );
      assert.equal(report.data.stuck_left_out.frames, 0);
      assert.deepEqual(
        report.data.sensor_check.problems.map((p) => [p.name, p.problem]),
        [["feature_3", "flat"]],
      );
      assert.equal(await new ModelRegistry(dirs.registry).activeVersion(NAME), active.version);
    });
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, history(false));
      const report = await run(dirs);
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
      const flat = report.criteria.find((c) => c.name === "flatSensors");
      assert.deepEqual([flat?.candidate, flat?.pass], [0, true]);
      assert.deepEqual(report.data.sensor_check.problems, []);
    });
  });

  test("a candidate that learnt an incident operators judged a false positive is promoted: injected anomalies within it are left out for both models", async () => {
    const pattern = (t: number, f: Float32Array, std: Float64Array) => {
      if (t >= 900 && t < 960) for (const s of [3, 6]) f[s] += 15 * std[s];
    };
    const flagged = (t: number) => (t >= 901 && t < 964 ? [3, 6] : []);
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2, pattern), flagged, {
        verdictOf: () => "false_positive",
      });
      const report = await run(dirs);
      assert.equal(report.decision, "promoted", report.reasons.join("; "));
      assert.ok(report.data.false_positive_frames_used >= 60);
      const leftOut = report.data.injected.left_out;
      assert.deepEqual(
        leftOut.sensors.map((s) => s.feature),
        ["feature_3", "feature_6"],
      );
      assert.ok(leftOut.events > 0);
      assert.equal(report.data.injected.events + leftOut.events, 5 * 16);
    });
    await scenario(async (dirs) => {
      // Not judged yet: the incident's frames stay out of training, nothing is left out.
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2, pattern), flagged);
      const report = await run(dirs);
      assert.equal(report.data.false_positive_frames_used, 0);
      assert.equal(report.data.injected.left_out.events, 0);
      assert.deepEqual(report.data.injected.left_out.sensors, []);
    });
  });

  test("too little history ends the run with the minimum stated and no version written", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, plantFrames(700, 2));
      await assert.rejects(run(dirs), (error: Error) => {
        assert.ok(error instanceof RetrainError);
        assert.match(
          error.message,
          /too little history: 696 usable frames .* at least 800 \(600 to train on/,
        );
        return true;
      });
      assert.deepEqual((await new ModelRegistry(dirs.registry).model(NAME)).versions, [
        active.version,
      ]);
    });
  });

  test("a history with nothing to read says why (missing, a file, no chunks yet) and writes no version", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      const refused = async (historyDir: string, why: RegExp) => {
        await assert.rejects(retrainAt(dirs, historyDir), (error: Error) => {
          assert.ok(error instanceof RetrainError, error.stack);
          assert.match(error.message, why);
          return true;
        });
      };
      await refused(join(dirs.history, "nowhere"), /too little history: no such folder/);
      await writeFile(join(dirs.registry, "a-file"), "x");
      await refused(join(dirs.registry, "a-file"), /not a folder/);
      await mkdir(dirs.history, { recursive: true });
      await refused(dirs.history, /too little history: no chunks in it yet/);
      assert.deepEqual((await new ModelRegistry(dirs.registry).model(NAME)).versions, [
        active.version,
      ]);
    });
  });

  test("a damaged history index is reported and left in place", async () => {
    await scenario(async (dirs) => {
      const { meta: active } = await trainInto(dirs.registry, plantFrames(1200, 1), true);
      await recordHistory(dirs.history, active.version, plantFrames(1500, 2));
      await writeFile(join(dirs.history, "index.json"), "{garbage");
      const said: string[] = [];
      const report = await retrain({
        model: NAME,
        historyDir: dirs.history,
        registryDir: dirs.registry,
        promote: "manual",
        settings,
        device: "cpu",
        eventsPerKind: 16,
        log,
        say: (line) => said.push(line),
      });
      assert.ok(
        said.some((l) => /index\.json is unusable .*not applied/.test(l)),
        said.join("\n"),
      );
      assert.equal(await readFile(join(dirs.history, "index.json"), "utf8"), "{garbage");
      assert.ok(report.candidate_version);
    });
  });
});

describe("promotion gate decision", () => {
  const metrics = (
    over: Partial<{
      fa: number;
      fi: number;
      confirmed: number;
      stuck: number;
      shifted: boolean;
    }> = {},
  ): ModelMetrics => {
    // Events found: the first `recall * 20` (or, `shifted`, the same number from the last one back).
    const kind = (recall: number, shifted = false) => {
      const n = Math.round(recall * 20);
      const found = Array.from({ length: n }, (_, i) => (shifted ? 19 - i : i));
      return { events: 20, detected: n, recall, found };
    };
    return {
      version: "v",
      recent: {
        windows: 10_000,
        alarmWindows: 0,
        incidents: 0,
        falseAlarmFramesPer10k: over.fa ?? 2,
        falseIncidentsPer10k: over.fi ?? 1,
      },
      confirmed: { incidents: 4, detected: 4, recall: over.confirmed ?? 1 },
      injected: {
        spike: kind(1),
        level_shift: kind(0.9),
        drift: kind(0.8),
        noise_burst: kind(0.7),
        stuck: kind(over.stuck ?? 0.9, over.shifted),
      },
    };
  };

  test("promotes a candidate within every tolerance", () => {
    const d = decide(metrics(), metrics({ fa: 3.2, fi: 2.1, stuck: 0.85 }));
    assert.equal(d.decision, "promoted");
    assert.equal(d.criteria.length, 8);
  });

  test("an injected-recall loss beyond the tolerance that chance explains is promoted, saying so; other events found as often is no loss", () => {
    // 18 of 20 stuck events against 16: two events lost, none gained, sign test p = 0.25.
    const d = decide(metrics(), metrics({ stuck: 0.8 }));
    assert.equal(d.decision, "promoted", d.reasons.join("; "));
    const stuck = d.criteria.find((c) => c.name === "injectedRecall.stuck")!;
    assert.equal(stuck.limit, 0.85);
    assert.match(
      stuck.note!,
      /^of 20 events, 2 found by the active version only and 0 by the candidate only \(one-sided sign test p = 0\.25, within chance\)$/,
    );
    // As many events found, but others: nothing lost on balance.
    const other = decide(metrics(), metrics({ shifted: true }));
    assert.equal(other.decision, "promoted");
    assert.match(
      other.criteria.find((c) => c.name === "injectedRecall.stuck")!.note!,
      /2 found by the active version only and 2 by the candidate only/,
    );
  });

  test("the sign test: exact one-sided binomial tail", () => {
    assert.equal(signTestP(0, 0), 1);
    const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    near(signTestP(2, 2), 0.25);
    near(signTestP(8, 8), 1 / 256);
    near(signTestP(7, 8), 9 / 256);
    near(signTestP(15, 20), 0.020694732666015625);
    assert.equal(signTestP(0, 10), 1);
  });

  test("holds a candidate that stops checking sensors for being stuck, naming them", () => {
    const lost = Array.from({ length: 7 }, (_, i) => ({ feature: i, name: `s${i}` }));
    const d = decide(metrics(), metrics(), { flat: [], stuckDetectionLost: lost });
    assert.equal(d.decision, "held");
    assert.deepEqual(d.reasons, [
      "stuckDetection: the candidate does not check s0 (feature 0), s1 (feature 1), s2 (feature 2), s3 (feature 3), s4 (feature 4), and 2 more for being stuck, which the active version does: its training stretch repeats a reading exactly or sits still there, so a stuck sensor would be learnt as normal",
    ]);
    assert.equal(
      decide(metrics(), metrics(), { flat: [], stuckDetectionLost: [] }).decision,
      "promoted",
    );
  });

  test("holds a candidate whose training stretch has a flat sensor, naming it, whatever its scores", () => {
    const flat = {
      feature: 3,
      name: "feature_3",
      problem: "flat" as const,
      spread: 0,
      learnt: 1079.1,
      nonFinite: 0,
    };
    const d = decide(metrics(), metrics(), { flat: [flat] });
    assert.equal(d.decision, "held");
    assert.deepEqual(d.reasons, [
      "flatSensors: feature_3 (feature 3): flat in the training stretch (1st..99th percentile spread 0, under 1 % of the 1079 the active version learnt): a stuck sensor would be learnt as normal",
    ]);
    assert.equal(decide(metrics(), metrics(), { flat: [] }).decision, "promoted");
  });

  test("holds a candidate when a kind had no injected events: its detection was not measured", () => {
    const none = (m: ModelMetrics): ModelMetrics => ({
      ...m,
      injected: { ...m.injected, drift: { events: 0, detected: 0, recall: null, found: [] } },
    });
    const d = decide(none(metrics()), none(metrics()), {
      flat: [],
      injectionShort: "no recent run of >= 120 frames",
    });
    assert.equal(d.decision, "held");
    assert.deepEqual(d.reasons, [
      "injectedRecall.drift: detection not measured: no recent run of >= 120 frames (at least 1 needed a kind)",
    ]);
    assert.match(decide(none(metrics()), none(metrics())).reasons[0], /0 drift events injected/);
  });

  for (const [name, candidate, pattern] of [
    [
      "false-alarm frames",
      metrics({ fa: 3.3 }),
      /falseAlarmFramesPer10k: candidate 3\.3 is above the limit 3\.2/,
    ],
    [
      "false incidents",
      metrics({ fi: 2.2 }),
      /falseIncidentsPer10k: candidate 2\.2 is above the limit 2\.1/,
    ],
    [
      "confirmed-incident recall",
      metrics({ confirmed: 0.75 }),
      /confirmedIncidentRecall: candidate 0\.75 is below the limit 1/,
    ],
    [
      "injected-anomaly recall",
      metrics({ stuck: 0.5 }),
      /^injectedRecall\.stuck: candidate 0\.5 is below the limit 0\.85 \(active 0\.9\); of 20 events, 8 found by the active version only and 0 by the candidate only \(one-sided sign test p = 0\.0039\)$/,
    ],
  ] as const) {
    test(`holds a candidate worse on ${name}`, () => {
      const d = decide(metrics(), candidate);
      assert.equal(d.decision, "held");
      assert.equal(d.reasons.length, 1);
      assert.match(d.reasons[0], pattern);
    });
  }
});
