// Turns suite tallies into the numbers of the evaluation table (JSON) and a Markdown table.
import type { SuiteResult } from "./suite.ts";

/** 95% upper confidence bound of a Poisson mean after observing `k` events. */
export function poissonUpper95(k: number): number {
  let lo = k;
  let hi = k + 10 + 5 * Math.sqrt(k + 1);
  for (let i = 0; i < 100; i++) {
    const mid = 0.5 * (lo + hi);
    // P(X <= k | mid)
    let term = Math.exp(-mid);
    let cdf = term;
    for (let j = 1; j <= k; j++) {
      term *= mid / j;
      cdf += term;
    }
    if (cdf > 0.05) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : 0.5 * (s[s.length / 2 - 1] + s[s.length / 2]);
}

export function summarise(r: SuiteResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  r.scorers.forEach((sc, s) => {
    const c = r.clean[s];
    const kinds: Record<string, unknown> = {};
    for (const k of r.kinds[s]) {
      const flagged = k.truePositives + k.falsePositives;
      kinds[k.kind] = {
        events: k.events,
        event_recall: round(k.detected / k.events),
        feature_recall: round(k.detectedFeatures / k.affectedFeatures),
        feature_recall_by_family: {
          gaussian: k.familyAffected[0] ? round(k.familyDetected[0] / k.familyAffected[0]) : null,
          heavy_tailed: k.familyAffected[1]
            ? round(k.familyDetected[1] / k.familyAffected[1])
            : null,
          quantised: k.familyAffected[2] ? round(k.familyDetected[2] / k.familyAffected[2]) : null,
        },
        flagged_feature_precision: flagged ? round(k.truePositives / flagged) : null,
        median_delay_frames: median(k.delays),
        mean_delay_frames: k.delays.length
          ? round(k.delays.reduce((a, b) => a + b, 0) / k.delays.length, 1)
          : null,
      };
    }
    out[sc.name] = {
      description: sc.description,
      threshold: round(sc.threshold, 4),
      clean_frames: c.frames,
      false_alert_frames: c.alertFrames,
      false_alert_frames_per_10k: round((1e4 * c.alertFrames) / c.frames, 2),
      false_alert_frames_per_10k_ub95: round((1e4 * poissonUpper95(c.alertFrames)) / c.frames, 2),
      flagged_feature_windows_per_clean_frame: round(c.flaggedFeatureWindows / c.frames, 4),
      kinds,
    };
  });
  return out;
}

/** Markdown table: one row per model and anomaly kind. */
export function markdownTable(summary: Record<string, unknown>): string {
  const lines = [
    "| model | false-alert frames / 10k clean (95% UB) | anomaly | event recall | feature recall | flagged-feature precision | median delay (frames) |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const [name, v] of Object.entries(summary)) {
    const m = v as {
      false_alert_frames_per_10k: number;
      false_alert_frames_per_10k_ub95: number;
      kinds: Record<string, Record<string, number | null>>;
    };
    let first = true;
    for (const [kind, k] of Object.entries(m.kinds)) {
      const fa = first
        ? `${m.false_alert_frames_per_10k} (${m.false_alert_frames_per_10k_ub95})`
        : "";
      lines.push(
        `| ${first ? name : ""} | ${fa} | ${kind} | ${k.event_recall} | ${k.feature_recall} | ${k.flagged_feature_precision ?? "–"} | ${k.median_delay_frames ?? "–"} |`,
      );
      first = false;
    }
  }
  return lines.join("\n");
}

/**
 * Each other scorer at the reference scorer's operating point, on the same frames and events:
 * (1) its threshold raised until it has no more false-alert frames than the reference, and the
 * event recall it keeps there; (2) per anomaly kind, the false-alert frames it needs to reach the
 * reference's event recall. Thresholds are chosen on the evaluation data itself, which favours
 * the baselines: the reference gets no such tuning.
 */
export function operatingPoints(r: SuiteResult, reference = 0): Record<string, unknown> {
  const ref = r.clean[reference];
  const out: Record<string, unknown> = {};
  r.scorers.forEach((sc, s) => {
    if (s === reference) return;
    const maxima = Float32Array.from(r.clean[s].maxima).sort().reverse();
    // Flag when a score is above the (k+1)-th highest clean maximum: at most k alert frames.
    const k = ref.alertFrames;
    const above = k < maxima.length ? maxima[k] : Number.NEGATIVE_INFINITY;
    const recallAtMatchedFalseAlerts: Record<string, number> = {};
    const falseAlertsAtMatchedRecall: Record<string, number | null> = {};
    r.kinds[s].forEach((kind, i) => {
      const detected = kind.eventMax.reduce((n, m) => n + (m > above ? 1 : 0), 0);
      recallAtMatchedFalseAlerts[kind.kind] = round(detected / kind.events);
      const needed = r.kinds[reference][i].detected;
      const sorted = Float32Array.from(kind.eventMax).sort().reverse();
      const threshold = needed > 0 ? sorted[needed - 1] : Number.POSITIVE_INFINITY;
      falseAlertsAtMatchedRecall[kind.kind] =
        needed === 0 || threshold === Number.NEGATIVE_INFINITY
          ? null
          : maxima.reduce((n, m) => n + (m >= threshold ? 1 : 0), 0);
    });
    out[sc.name] = {
      matched_false_alerts: {
        false_alert_frames: maxima.reduce((n, m) => n + (m > above ? 1 : 0), 0),
        event_recall: recallAtMatchedFalseAlerts,
      },
      false_alert_frames_at_matched_recall: falseAlertsAtMatchedRecall,
    };
  });
  return out;
}

/** Markdown table of {@link operatingPoints}: one row per scorer and anomaly kind. */
export function operatingPointsTable(
  points: Record<string, unknown>,
  summary: Record<string, unknown>,
  referenceName: string,
): string {
  const ref = summary[referenceName] as {
    false_alert_frames: number;
    clean_frames: number;
    kinds: Record<string, { event_recall: number }>;
  };
  const lines = [
    `| scorer | anomaly | ${referenceName} event recall | scorer's recall at ≤ ${ref.false_alert_frames} false-alert frames / ${ref.clean_frames} | scorer's false-alert frames / ${ref.clean_frames} at the same recall |`,
    "|---|---|---|---|---|",
  ];
  for (const [name, v] of Object.entries(points)) {
    const p = v as {
      matched_false_alerts: { event_recall: Record<string, number> };
      false_alert_frames_at_matched_recall: Record<string, number | null>;
    };
    let first = true;
    for (const [kind, recall] of Object.entries(p.matched_false_alerts.event_recall)) {
      lines.push(
        `| ${first ? name : ""} | ${kind} | ${ref.kinds[kind].event_recall} | ${recall} | ${p.false_alert_frames_at_matched_recall[kind] ?? "–"} |`,
      );
      first = false;
    }
  }
  return lines.join("\n");
}
