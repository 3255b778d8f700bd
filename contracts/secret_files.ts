// Secrets given as files (`NAME_FILE`, the way Docker and Kubernetes mount them), read into the environment before it is parsed.
import { readFileSync } from "node:fs";
import { ConfigError } from "./config.ts";

/** The secrets the services also take as `NAME_FILE` (each service reads those it knows). */
export const SECRET_FILE_NAMES = [
  "ADMIN_TOKEN",
  "INGEST_TOKEN",
  "ALERT_SIGNING_SECRET",
  "SESSION_SECRET",
  "OIDC_CLIENT_SECRET",
  "CONSOLE_TOKEN",
] as const;

/**
 * `env` with each of `names` that is unset (or blank) but has `NAME_FILE` set replaced by that
 * file's content, trimmed. Both set is a ConfigError (which one is meant?), and so is a file
 * that cannot be read or is empty, naming it.
 *
 * @example parseConfig(engineConfigSchema, withSecretFiles(process.env));
 */
export function withSecretFiles(
  env: Record<string, string | undefined>,
  names: readonly string[] = SECRET_FILE_NAMES,
): Record<string, string | undefined> {
  const out = { ...env };
  for (const name of names) {
    const path = env[`${name}_FILE`];
    if (!path) continue;
    if (env[name]) throw new ConfigError(`set '${name}' or '${name}_FILE', not both`);
    let text: string;
    try {
      text = readFileSync(path, "utf8").trim();
    } catch (error) {
      throw new ConfigError(`'${name}_FILE' ${path} cannot be read: ${(error as Error).message}`);
    }
    if (text === "") throw new ConfigError(`'${name}_FILE' ${path} is empty`);
    out[name] = text;
  }
  return out;
}
