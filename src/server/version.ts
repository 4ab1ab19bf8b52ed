/** The package version, read once from package.json (reported by /docs and the model info). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BUNDLED_MODELS_DIR } from '../codec/index.js';

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(path.join(path.dirname(BUNDLED_MODELS_DIR), 'package.json'), 'utf8')) as { version: string }
).version;
