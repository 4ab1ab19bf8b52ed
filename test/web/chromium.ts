/**
 * The system Chromium, driven by puppeteer-core (no browser download): `VLMPRESS_CHROMIUM`, else the
 * Debian package's /usr/bin/chromium (.ci/run and scripts/test.sh install it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { ROOT } from '../helpers.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string {
  const found = [process.env['VLMPRESS_CHROMIUM'], ...CANDIDATES].find((p) => p && existsSync(p));
  if (!found) throw new Error(`no Chromium found (looked at ${CANDIDATES.join(', ')}; set VLMPRESS_CHROMIUM): apt-get install chromium`);
  return found;
}

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // root in CI containers has no user namespace sandbox; the pages are our own, on loopback
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
  });
}

/** Console errors, uncaught exceptions and failed requests of a page, for "loads with no errors". */
export function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`exception: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return problems;
}

/** Test screenshots: artifacts of the run, never committed. */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file as `${string}.png`, fullPage: true });
  return file;
}

/** Waits for the inspector to finish its current step (body[data-state] done or error). */
export async function settled(page: Page, timeout = 60_000): Promise<string> {
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset['state'] ?? ''), { timeout });
  return page.evaluate(() => document.body.dataset['state']!);
}
