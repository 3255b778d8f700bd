// A model's running condition: when one sensor says the machine is not running, its windows are not anomalies.
import * as v from "valibot";

const OPS = [">", ">=", "<", "<="] as const;

/** `{"feature": "speed_rpm", "op": ">", "value": 100}`: running while `speed_rpm > 100`. */
export const runningConditionSchema = v.object({
  feature: v.pipe(v.string(), v.minLength(1)),
  op: v.picklist(OPS),
  value: v.pipe(v.number(), v.finite()),
});

export type RunningCondition = v.InferOutput<typeof runningConditionSchema>;

/**
 * Parses `--running "SENSOR>X"` (also `>=`, `<`, `<=`). Throws a `RangeError` quoting the text.
 *
 * @example parseRunningCondition("speed_rpm>100"); // { feature: "speed_rpm", op: ">", value: 100 }
 */
export function parseRunningCondition(text: string): RunningCondition {
  const m = /^\s*([^<>=\s]+)\s*(>=|<=|>|<)\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/.exec(
    text,
  );
  if (!m) {
    throw new RangeError(
      `running condition ${JSON.stringify(text)} must read SENSOR>X (or >=, <, <=), e.g. "speed_rpm>100"`,
    );
  }
  return { feature: m[1], op: m[2] as RunningCondition["op"], value: Number(m[3]) };
}

/** `SENSOR>X` as typed. */
export function formatRunningCondition(c: RunningCondition): string {
  return `${c.feature}${c.op}${c.value}`;
}

/** Whether a reading satisfies the condition (a non-finite reading says nothing: running). */
export function isRunning(c: RunningCondition, reading: number): boolean {
  if (!Number.isFinite(reading)) return true;
  switch (c.op) {
    case ">":
      return reading > c.value;
    case ">=":
      return reading >= c.value;
    case "<":
      return reading < c.value;
    case "<=":
      return reading <= c.value;
  }
}
