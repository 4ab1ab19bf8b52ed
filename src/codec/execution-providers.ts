/**
 * Which ONNX Runtime execution providers this installation can really use. The preference list from
 * the configuration is intersected with what is installed, so a CPU-only install never tries (and
 * noisily fails) to load CUDA libraries that are not there.
 *
 * onnxruntime-node ships the CPU provider in the npm package; the CUDA provider's libraries are
 * downloaded by its install script (`ONNXRUNTIME_NODE_INSTALL=cuda12`) and are skipped offline
 * (`ONNXRUNTIME_NODE_INSTALL=skip`). See docs/codec-runtime.md.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type ExecutionProviderName = 'cuda' | 'cpu';
export const KNOWN_PROVIDERS: readonly ExecutionProviderName[] = ['cuda', 'cpu'];

function bindingDirs(): string[] {
  try {
    const require = createRequire(import.meta.url);
    const pkgDir = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const binDir = path.join(pkgDir, 'bin');
    return readdirSync(binDir)
      .filter((d) => d.startsWith('napi-'))
      .map((d) => path.join(binDir, d, process.platform, process.arch));
  } catch {
    return [];
  }
}

export function installedProviders(): ExecutionProviderName[] {
  const found: ExecutionProviderName[] = [];
  if (bindingDirs().some((d) => existsSync(path.join(d, 'libonnxruntime_providers_cuda.so')))) found.push('cuda');
  found.push('cpu');
  return found;
}

export function parseProviderList(text: string): ExecutionProviderName[] {
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const n of names) {
    if (!(KNOWN_PROVIDERS as readonly string[]).includes(n))
      throw new Error(`unknown execution provider "${n}" (known: ${KNOWN_PROVIDERS.join(', ')})`);
  }
  return names as ExecutionProviderName[];
}

/** The preference list restricted to installed providers, always ending with the CPU as a fallback. */
export function resolveProviders(preference: readonly ExecutionProviderName[]): ExecutionProviderName[] {
  const installed = new Set(installedProviders());
  const list = preference.filter((p) => installed.has(p));
  if (!list.includes('cpu')) list.push('cpu');
  return list;
}
