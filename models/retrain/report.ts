// The retraining report (JSON beside the version) and its human summary.
import type { Activation } from "../../engine/infer/mod.ts";
import type { LeftOutSensor } from "./false_positive_cover.ts";
import type { SensorProblem, StuckSensor } from "./flat_sensors.ts";
import type { Criterion, ModelMetrics, TOLERANCES } from "./gate.ts";

export interface RetrainReport {
  model: string;
  candidate_version: string;
  active_version: string;
  /** `promoted`: the gate passed (activated with `promote: auto`); `held`: it did not, see `reasons`. */
  decision: "promoted" | "held";
  reasons: string[];
  promote: "auto" | "manual";
  activated: Activation | null;
  decided_at: string;
  criteria: Criterion[];
  tolerances: typeof TOLERANCES;
  models: { active: ModelMetrics; candidate: ModelMetrics | null };
  data: {
    history_dir: string;
    chunks: number;
    frames_read: number;
    /** `RETRAIN_MAX_FRAMES`: older chunks not read, frames of the oldest one read dropped. */
    lookback: { maxFrames: number; chunksNotRead: number; framesDropped: number } | null;
    skipped_records: number;
    warnings: string[];
    time_range: { from: string | null; to: string | null };
    usable_frames: number;
    false_positive_frames_used: number;
    /** Frames read but left out, by why (verdicts, unjudged incidents). */
    excluded_read: Record<string, number>;
    /** Frames the engine never recorded, by why (silences, machine off, ...), all time. */
    excluded_before_recording: Record<string, number>;
    training: { frames: number; runs: number; from: string; to: string };
    recent: { frames: number; runs: number; from: string; to: string };
    confirmed_incidents: string[];
    /** `events`: those both models were scored on. */
    injected: {
      per_kind: number;
      seed: number;
      events: number;
      /**
       * Injected events not counted because operators' false-positive verdicts call them normal
       * (`rule`); `widened`: how many sensors those verdicts took beyond their clean range;
       * `sensors`: those that left an event out and the most widened others, at most 50 in all
       * (false_positive_cover.ts `listedLeftOut`), how far (in sensor std), what was left out.
       */
      left_out: {
        events: number;
        rule: string;
        widened: number;
        sensors: (LeftOutSensor & { feature: string })[];
      };
    };
    /** Training frames cut out because a sensor was stuck in them (flat_sensors.ts stuckStretches). */
    stuck_left_out: {
      rule: string;
      frames: number;
      sensors: StuckSensor[];
      /** Sensors whose stuck check the candidate dropped for quantised readings, not a held reading. */
      check_dropped_otherwise: { why: string; count: number; first: string[] };
    };
    /** Sensors of the training stretch checked against the active version's typical ranges (flat_sensors.ts). */
    sensor_check: { flat_share: number; problems: SensorProblem[]; skipped?: string };
  };
}

const fmt = (x: number | null) => (x === null ? "-" : String(Number(x.toFixed(4))));

/** A few lines for a person: the two models side by side and the decision. */
export function summary(report: RetrainReport, path: string): string {
  const lines = [
    `retrain ${report.model}: candidate ${report.candidate_version} vs active ${report.active_version}`,
    `data: ${report.data.training.frames} frames trained on (${report.data.training.from} .. ${report.data.training.to}), ` +
      `${report.data.recent.frames} recent frames judged (${report.data.recent.from} .. ${report.data.recent.to}), ` +
      `excluded ${JSON.stringify(report.data.excluded_read)}, not recorded ${JSON.stringify(report.data.excluded_before_recording)}`,
    `${"criterion".padEnd(28)} ${"active".padStart(10)} ${"candidate".padStart(10)} ${"limit".padStart(10)}`,
    ...report.criteria.map(
      (c) =>
        `${c.name.padEnd(28)} ${fmt(c.active).padStart(10)} ${fmt(c.candidate).padStart(10)} ${fmt(c.limit).padStart(10)} ${c.pass ? "ok" : "WORSE"}`,
    ),
    ...(report.data.injected.left_out.events
      ? [
          `left out: ${report.data.injected.left_out.events} injected anomalies within what operators judged false positive on ` +
            report.data.injected.left_out.sensors
              .filter((s) => s.events)
              .map((s) => `${s.feature} (up to ${s.judged_normal_std} std)`)
              .join(", "),
        ]
      : []),
    ...(report.data.stuck_left_out.frames
      ? [
          `left out: ${report.data.stuck_left_out.frames} training frames in which ` +
            report.data.stuck_left_out.sensors
              .filter((s) => s.action === "left_out")
              .map((s) => s.name)
              .join(", ") +
            " held a reading (stuck)",
        ]
      : []),
    `decision: ${report.decision} (${report.reasons.join("; ")})`,
    report.activated
      ? `activated: ${report.activated.from} -> ${report.activated.version}`
      : report.decision === "promoted"
        ? `ready, not active (RETRAIN_PROMOTE=manual): POST /models/${report.model}/activate {"version": "${report.candidate_version}"}`
        : "not activated",
    `report: ${path}`,
  ];
  return lines.join("\n");
}
