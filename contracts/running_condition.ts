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

const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * Parses `--running "SENSOR>X"` (also `>=`, `<`, `<=`). The text splits at its LAST operator, so
 * a sensor name may hold spaces, brackets and `<>=` (`Motor Speed [rpm]>100`); a number never
 * does. Throws a `RangeError` quoting the text and saying which part was wrong.
 *
 * @example parseRunningCondition("speed_rpm>100"); // { feature: "speed_rpm", op: ">", value: 100 }
 */
export function parseRunningCondition(text: string): RunningCondition {
  const at = Math.max(text.lastIndexOf(">"), text.lastIndexOf("<"));
  const op = (at < 0 ? "" : text[at + 1] === "=" ? `${text[at]}=` : text[at]) as
    | RunningCondition["op"]
    | "";
  const feature = at < 0 ? "" : text.slice(0, at).trim();
  const valueText = at < 0 ? "" : text.slice(at + op.length).trim();
  const wrong =
    at < 0
      ? "it has no operator"
      : feature === ""
        ? `no sensor name before '${op}'`
        : !NUMBER.test(valueText)
          ? `${JSON.stringify(valueText)} after '${op}' is not a number`
          : undefined;
  if (wrong !== undefined || op === "") {
    throw new RangeError(
      `running condition ${JSON.stringify(text)} must read SENSOR>X (or >=, <, <=), e.g. "speed_rpm>100": ${wrong}`,
    );
  }
  return { feature, op, value: Number(valueText) };
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
