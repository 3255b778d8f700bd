// A command's arguments as our CLIs read them: --help, and mistakes said with the usage before any work.
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Parses the command line with `parse` (node:util `parseArgs` with a `help` flag). `--help`
 * prints `usage` and exits 0; an argument `parse` refuses, or one the caller refuses through
 * `usageError`, is printed as `<name>: <message>` with the usage, exit status 2, before any work.
 *
 * @example const { parsed, usageError } = commandLine("bench", USAGE, parseBenchArgs);
 */
export function commandLine<T extends { values: { help?: boolean } }>(
  name: string,
  usage: string,
  parse: (argv: string[]) => T,
  argv: string[] = process.argv.slice(2),
): { parsed: T; usageError(message: string): never } {
  const usageError = (message: string): never => {
    console.error(`${name}: ${message}`);
    console.error(usage);
    process.exit(2);
  };
  let parsed: T;
  try {
    parsed = parse(argv);
  } catch (error) {
    return usageError((error as Error).message);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  return { parsed, usageError };
}

/**
 * Why `file`, an output a command writes at the end of its run (`--json FILE`), could not be
 * written, or `undefined` when it can: its folder is missing, not a folder or not writable, or
 * `file` is a folder. Checked before any work, so a typo never costs a whole run.
 *
 * @example const problem = await outputFileProblem(args.json); if (problem) usageError(`'--json ${args.json}': ${problem}`);
 */
export async function outputFileProblem(file: string): Promise<string | undefined> {
  const dir = dirname(file);
  try {
    if (!(await stat(dir)).isDirectory()) return `${dir} is not a folder`;
    await access(dir, constants.W_OK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ENOENT") return `folder ${dir} does not exist`;
    if (code === "ENOTDIR") return `${dir} is not a folder`;
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      return `folder ${dir} is not writable`;
    }
    return (error as Error).message;
  }
  if ((await stat(file).catch(() => undefined))?.isDirectory()) return "it is a folder";
  return undefined;
}
