// Keeps an alert's JSON body within the receiver's limit (`ALERT_MAX_BYTES`), least severe sensors giving way first.
import type { Alert } from "../../contracts/alert.ts";

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** What an alert lost to fit its receiver's limit. */
export interface AlertFit {
  /** Listed sensors whose `history` and `related` were left out. */
  contextDropped: number;
  /** Listed sensors whose `typical` was left out. */
  typicalDropped: number;
  /** Sensors no longer listed (`num_anomalous_features` still counts them). */
  unlisted: number;
}

/**
 * Shrinks `alert` in place until its JSON body takes at most `maxBytes`. In order of what is
 * kept: as many sensors as fit are listed with what every alert of ours carries for one (name,
 * score, severity, value, window, statistic; never cut short), the rest leave the list
 * (`num_anomalous_features` keeps counting them); then, most severe first, each listed sensor's
 * `typical` while it fits; then, most severe first, its context (`history`, `related`). The list
 * arrives most severe first (`rankFlagged`), so a receiver with a small limit gets the incident's
 * worst sensors first, and the most severe sensor is always listed. Returns `undefined` when the
 * alert already fits (the common case: one serialisation).
 *
 * @example fitAlert(alert, 100 * 1024); // the original main server's limit
 */
export function fitAlert(alert: Alert, maxBytes: number): AlertFit | undefined {
  const total = bytes(alert);
  if (total <= maxBytes) return undefined;
  const list = alert.anomalous_features;
  // Per listed sensor (with its separating comma): its bare entry, and what its range and its
  // context add to it.
  const bare: number[] = [];
  const typical: number[] = [];
  const context: number[] = [];
  let listed = 0;
  for (const f of list) {
    const { history, related, typical: range, ...rest } = f;
    const b = bytes(rest) + 1;
    const t = range === undefined ? 0 : bytes({ ...rest, typical: range }) + 1 - b;
    bare.push(b);
    typical.push(t);
    context.push(bytes(f) + 1 - b - t);
    listed += bytes(f) + 1;
  }
  let room = maxBytes - (total - listed);
  let n = 0;
  while (n < list.length && (n === 0 || bare[n] <= room)) room -= bare[n++];
  let m = 0;
  while (m < n && typical[m] <= room) room -= typical[m++];
  let c = 0;
  while (c < m && context[c] <= room) room -= context[c++];
  const fit: AlertFit = { contextDropped: 0, typicalDropped: 0, unlisted: list.length - n };
  list.length = n;
  for (let i = 0; i < n; i++) {
    const f = list[i];
    if (i >= c && (f.history !== undefined || f.related !== undefined)) {
      delete f.history;
      delete f.related;
      fit.contextDropped++;
    }
    if (i >= m && f.typical !== undefined) {
      delete f.typical;
      fit.typicalDropped++;
    }
  }
  return fit;
}
