// Formatting the console shows: ages, times, numbers; the same rules the client script uses.

/** "42 s", "3 min", "2 h 5 min", "3 d": how long ago `iso` was at `now`. */
export function age(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** A UTC time as "2026-11-24 09:00:03Z". */
export function utc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

/** A number with at most `digits` significant digits, or "–" for null. */
export function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "–";
  return Number(x.toPrecision(digits)).toString();
}

/** The colour step (0..8) of a severity for the heatmap: about one step per 5 units of -log10 p. */
export function severityStep(severity: number | null): number {
  if (severity === null) return 1;
  return Math.max(1, Math.min(8, Math.ceil(severity / 5)));
}

/** "boiler@2.2.0": a model and its version as alerts name them; "–" when they named neither. */
export function modelLabel(name: string | null | undefined, version: string | null | undefined) {
  if (!name && !version) return "–";
  if (!name) return version!;
  return version ? `${name}@${version}` : name;
}
