/**
 * What the two entry points (`npm start`, `npm run worker`) share about being a process: start-up
 * problems an operator must fix end it with exit code 2 and one line on stderr, and SIGINT/SIGTERM
 * drain it once, within a time limit.
 */

/** Runs `start`; an error of one of `expected` types ends the process with `program: message` and exit 2. */
export async function startOrExit<T>(
  program: string,
  start: () => T | Promise<T>,
  expected: (abstract new (...args: never[]) => Error)[],
): Promise<T> {
  try {
    return await start();
  } catch (e) {
    if (expected.some((type) => e instanceof type)) {
      process.stderr.write(`${program}: ${(e as Error).message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/**
 * On the first SIGINT or SIGTERM: `drain()` (finish what is in flight, release resources), then exit
 * 0; if draining takes longer than `limitMs`, exit 1 with `onOverrun` told.
 */
export function drainOnSignals(drain: (signal: string) => Promise<void>, limitMs: number, onOverrun: () => void): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      onOverrun();
      process.exit(1);
    }, limitMs);
    timer.unref();
    await drain(signal);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
