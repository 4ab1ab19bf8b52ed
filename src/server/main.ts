/** `npm start`: load the configuration, start the gateway, shut down gracefully on SIGINT/SIGTERM. */
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { drainOnSignals, startOrExit } from '../infra/process.js';
import { PolicyTableError } from '../policy/policy-table.js';

const config = await startOrExit('vlmpress', () => loadConfig(), [ConfigError]);
const app = await startOrExit('vlmpress', () => buildApp({ config }), [PolicyTableError, ConfigError]);
drainOnSignals(
  async (signal) => {
    app.log.info({ signal }, 'shutting down: draining requests and jobs');
    await app.close();
  },
  30_000,
  () => app.log.error('shutdown took longer than 30 s, exiting'),
);
await app.listen({ port: config.port, host: config.host });
