// Which versions a registry write may prune: the one policy of the on-disk and the scale-out registry.

/**
 * Versions a model keeps at least (the newest by when they were written): older ones are pruned
 * by the next write, unless active, the rollback target or younger than {@link PRUNE_MIN_AGE_MS}.
 * A retraining writes one candidate (~5 MB at 25,000 sensors) per run, kept or not.
 */
export const KEEP_VERSIONS = 20;
/** A version written within this long is never pruned (a candidate a person has yet to look at). */
export const PRUNE_MIN_AGE_MS = 24 * 60 * 60_000;

/** One version pruned: each registry keeps a record per version, as it does per activation. */
export interface Pruning {
  name: string;
  version: string;
  /** When it was written. */
  written_at: string;
  at: string;
  reason: string;
}

/** What pruning must leave: the active version and the one active before it (`from`). */
export interface PrunePointer {
  version: string;
  from: string | null;
}

/** `'keepVersions'` checked, as each registry's constructor takes it. */
export function checkKeepVersions(keep: number): number {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new RangeError(`'keepVersions' must be an integer >= 1, got ${keep}`);
  }
  return keep;
}

/** The versions a write looks at for pruning: all but the newest `keep` of `versions` (oldest first). */
export function beyondNewest<T>(versions: readonly T[], keep: number): T[] {
  return versions.slice(0, Math.max(0, versions.length - keep));
}

/**
 * Whether `version`, written at `writtenAt` (epoch ms), may be pruned at `now` given the pointer
 * just read: never the active version, its rollback target, one written within
 * {@link PRUNE_MIN_AGE_MS}, nor anything while what is active is not known (no pointer). A
 * registry asks again, with the pointer read again, right before it removes the version.
 *
 * @example
 * mayPrune("1.0.0", Date.now() - 2 * PRUNE_MIN_AGE_MS, { version: "1.2.0", from: "1.1.0" }, Date.now()); // true
 */
export function mayPrune(
  version: string,
  writtenAt: number,
  pointer: PrunePointer | undefined,
  now: number,
): boolean {
  if (!pointer || version === pointer.version || version === pointer.from) return false;
  return now - writtenAt >= PRUNE_MIN_AGE_MS;
}

/** The reason a {@link Pruning} record gives. */
export const pruneReason = (keep: number) =>
  `inactive, not the rollback target, beyond the newest ${keep} versions`;
