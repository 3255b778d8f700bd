// Reads a version's retraining report (the JSON the retraining wrote beside its candidate) for GET /models/{name}/retrains/{version}.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { type RetrainReport, retrainReportSchema } from "../../contracts/models_api.ts";

/**
 * Where the retraining CLI writes the report of candidate `version` of `name` in the registry
 * `dir`: `<dir>/<name>/<version>.retrain.json`. Kept in step with models/retrain/retrain.ts
 * `reportPath` by hand: the engine imports nothing of models/. The caller has checked `name` and
 * `version` as safe path segments (the registry does).
 */
export const retrainReportPath = (dir: string, name: string, version: string) =>
  join(dir, name, `${version}.retrain.json`);

/**
 * `raw` checked against the contract's report schema (extra fields kept); `422 report_invalid`
 * naming `where` and the first field that is off otherwise.
 */
export function parseRetrainReport(raw: unknown, where: string): RetrainReport {
  const parsed = v.safeParse(retrainReportSchema, raw);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new HttpError(
      422,
      "report_invalid",
      `the retraining report of ${where} is not one: ${v.getDotPath(issue) ?? "(report)"}: ${issue.message}`,
    );
  }
  return parsed.output;
}

/**
 * The report of `name@version` in the on-disk registry `dir`: `404 report_not_found` when the
 * version has none (it was trained, not retrained), `422 report_invalid` when it does not parse.
 *
 * @example await readRetrainReport("/models", "boiler", "2.3.0+9fa2419cba78"); // { decision: "held", ... }
 */
export async function readRetrainReport(
  dir: string,
  name: string,
  version: string,
): Promise<RetrainReport> {
  const where = `${name}@${version}`;
  let text: string;
  try {
    text = await readFile(retrainReportPath(dir, name, version), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw reportNotFound(where);
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new HttpError(
      422,
      "report_invalid",
      `the retraining report of ${where} is not JSON: ${(error as Error).message}`,
    );
  }
  return parseRetrainReport(raw, where);
}

/** `404 report_not_found` for `where` (`name@version`). */
export function reportNotFound(where: string): HttpError {
  return new HttpError(
    404,
    "report_not_found",
    `${where} has no retraining report: it was not written by a retraining`,
  );
}
