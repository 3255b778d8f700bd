// A command's arguments as our CLIs read them: --help, and mistakes said with the usage before any work.

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
