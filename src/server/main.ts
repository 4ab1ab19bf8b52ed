/** `npm start`: load the configuration, start the gateway, shut down gracefully on SIGINT/SIGTERM. */
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { PolicyTableError } from '../policy/policy-table.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`vlmpress: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let app;
  try {
    app = await buildApp({ config });
  } catch (e) {
    if (e instanceof PolicyTableError || e instanceof ConfigError) {
      process.stderr.write(`vlmpress: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down: draining requests and jobs');
    const timer = setTimeout(() => {
      app.log.error('shutdown took longer than 30 s, exiting');
      process.exit(1);
    }, 30_000);
    timer.unref();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  await app.listen({ port: config.port, host: config.host });
}

await main();
