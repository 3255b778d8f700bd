// `npm run token -- --name NAME --role viewer|operator|admin [--expires-days N] [--file tokens.json]`: makes an API token, prints it once, stores only its hash. `--remove NAME` takes one out.
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { apiTokenSchema, ROLES, type Role } from "../../contracts/auth.ts";
import { commandLine } from "../../contracts/command_line.ts";
import { addToken, readTokens, writeTokens } from "./token_file.ts";

/** The tokens file cannot be used (the arguments were fine): the message, exit 1. */
function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(1);
}

const USAGE =
  "usage: npm run token -- --name NAME --role viewer|operator|admin [--expires-days N] [--if-missing] [--file tokens.json] | --remove NAME [--file tokens.json]";

const options = {
  name: { type: "string" },
  role: { type: "string" },
  "expires-days": { type: "string" },
  file: { type: "string", default: process.env.API_TOKENS_FILE || "tokens.json" },
  remove: { type: "string" },
  "if-missing": { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

// A mistake in the arguments is printed with the usage, exit status 2, before any work.
const cli = commandLine("token", USAGE, (args) => parseArgs({ args, options }));
// Annotated: a call to it then narrows like a throw.
const usageError: (message: string) => never = cli.usageError;
const { values } = cli.parsed;

// --remove takes a token out: what would make one would be ignored.
const makeOnly = (["name", "role", "expires-days", "if-missing"] as const).filter(
  (key) => values[key] !== undefined && values[key] !== false,
);
if (values.remove !== undefined && makeOnly.length > 0) {
  usageError(
    `${makeOnly.map((key) => `'--${key}'`).join(", ")} ${makeOnly.length === 1 ? "makes" : "make"} a token: not with '--remove'`,
  );
}
let name = "";
let role: Role = "viewer";
let expiresAt: string | undefined;
if (values.remove === undefined) {
  name = values.name ?? usageError("--name is required (who or what the token is for)");
  const nameCheck = v.safeParse(apiTokenSchema.entries.name, name);
  if (!nameCheck.success) usageError(`--name ${nameCheck.issues[0].message}, got '${name}'`);
  role = (values.role ?? usageError(`--role is required: ${ROLES.join("|")}`)) as Role;
  if (!ROLES.includes(role)) usageError(`--role must be one of ${ROLES.join("|")}, got ${role}`);
  if (values["expires-days"] !== undefined) {
    const days = Number(values["expires-days"]);
    if (!(days > 0 && days <= 3650)) {
      usageError(
        `--expires-days must be a number of days above 0 and at most 3650, got '${values["expires-days"]}'`,
      );
    }
    expiresAt = new Date(Date.now() + days * 86_400_000).toISOString();
  }
}

const file = values.file as string;
// The file is replaced through a temporary one beside it: a missing folder would be reported
// with that temporary name, not the one the user gave.
const folder = dirname(file);
if (!existsSync(folder)) fail(`--file ${file}: folder ${folder} does not exist`);
if (!statSync(folder).isDirectory()) fail(`--file ${file}: ${folder} is not a folder`);
try {
  await readTokens(file);
} catch (error) {
  fail(`${file}: ${(error as Error).message}`);
}

if (values.remove !== undefined) {
  const tokens = await readTokens(file);
  const left = tokens.filter((t) => t.name !== values.remove);
  if (left.length === tokens.length) fail(`no token named ${values.remove} in ${file}`);
  await writeTokens(file, left);
  console.log(`removed ${values.remove} from ${file}: it is refused from now on`);
  process.exit(0);
}

let secret: string | undefined;
try {
  secret = await addToken(file, { name, role, expiresAt });
} catch (error) {
  fail(`${file}: ${(error as Error).message}`);
}
if (secret === undefined) {
  if (values["if-missing"]) {
    console.log(`${file} already holds a token named ${name}: nothing changed`);
    process.exit(0);
  }
  fail(`${file} already holds a token named ${name} (remove it first with --remove ${name})`);
}
console.log(
  `token for ${name} (${role}${expiresAt ? `, expires ${expiresAt}` : ""}), stored hashed in ${file}:`,
);
console.log(secret);
console.log(
  "It is shown only now. Use it as 'Authorization: Bearer <token>' or in the console's sign-in form.",
);
