/**
 * Command-line options of the bench scripts: `--help` prints the usage line and exits 0; an unknown
 * or malformed option prints the problem and the usage and exits 2 (never a stack trace).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function benchArgs<const O extends Options>(usage: string, options: O): ReturnType<typeof parseArgs<{ options: O }>>['values'] {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`usage: ${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: ${usage}\n`);
    process.exit(2);
  }
}
