/**
 * The inspector page and the browser encoder in a real Chromium (the Debian package) against a real
 * gateway on loopback: the page loads clean, a server-side compression is displayed with the sizes
 * the gateway reports, a browser-made bitstream is accepted and decodes close to the gateway's own
 * encode (docs/inspector.md: the measured bound), bad files and missing keys show clear errors.
 * Screenshots go to test-artifacts/ (not committed).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Browser, Page } from 'puppeteer-core';
import { CodecKind, Flags, parseContainer, QUALITY_ONE } from '../../src/codec/container.js';
import type { RgbImage } from '../../src/codec/index.js';
import { startGateway, type TestGateway } from '../gateway/harness.js';
import { psnr, sharedFile } from '../helpers.js';
import { collectProblems, launchChromium, screenshot, settled } from './chromium.js';

const KODAK = sharedFile('data', 'kodak', 'kodim23.png');

async function rgb(file: string | Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

const cell = (page: Page, stage: string, c: string) =>
  page.$eval(`#stats tr[data-stage="${stage}"] .${c}`, (e) => (e as HTMLElement).dataset['value'] ?? '');

async function openPage(browser: Browser, gw: TestGateway): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const problems = collectProblems(page);
  await page.goto(`${gw.base}/ui`);
  return { page, problems };
}

/** The page, ready (the policy loaded), with `file` picked. */
async function openWithImage(browser: Browser, gw: TestGateway, file: string): Promise<{ page: Page; problems: string[] }> {
  const opened = await openPage(browser, gw);
  await opened.page.waitForFunction(() => document.body.dataset['state'] === 'idle');
  await pick(opened.page, file);
  return opened;
}

async function pick(page: Page, file: string): Promise<void> {
  const input = await page.$('input#file');
  await input!.uploadFile(file);
}

describe('inspector page in Chromium', () => {
  let browser: Browser;
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    browser = await launchChromium();
    gw = await startGateway('embedded');
    dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-ui-'));
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads with no console errors, isolated for the threaded encoder, its form filled from /policy', async () => {
    const { page, problems } = await openPage(browser, gw);
    await page.waitForFunction(() => (document.querySelector<HTMLSelectElement>('#target')?.options.length ?? 0) > 0);
    const form = await page.evaluate(() => ({
      isolated: crossOriginIsolated,
      target: document.querySelector<HTMLSelectElement>('#target')!.value,
      profiles: [...document.querySelector<HTMLSelectElement>('#profile')!.options].map((o) => o.value),
      error: document.querySelector<HTMLElement>('#error')!.hidden,
    }));
    assert.equal(form.isolated, true);
    assert.equal(form.target, '0.98');
    assert.ok(form.profiles.includes('openai') && form.profiles.includes('anthropic'));
    assert.equal(form.error, true, 'no error shown');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('compresses on the gateway and shows the reconstruction with the sizes the gateway reports', async () => {
    const { page, problems } = await openWithImage(browser, gw, KODAK);
    await page.click('#serverBtn');
    assert.equal(await settled(page), 'done');
    const id = await page.$eval('#ids', (e) => (e as HTMLElement).dataset['id']!);
    const bitstream = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${id}`)).arrayBuffer());
    const header = parseContainer(bitstream);
    const recon = await page.$eval('#recon', (e) => [(e as HTMLImageElement).naturalWidth, (e as HTMLImageElement).naturalHeight]);
    assert.deepEqual(recon, [header.width, header.height]);
    assert.equal(Number(await cell(page, 'stored', 'bytes')), bitstream.length);
    assert.equal(await cell(page, 'stored', 'size'), `${header.width}x${header.height}`);
    // The upstream copy the proxy would send: the reconstruction as WebP q90, byte for byte.
    const copy = await (await fetch(`${gw.base}/bitstreams/${id}/image?format=webp`)).arrayBuffer();
    assert.equal(Number(await cell(page, 'upstream', 'bytes')), copy.byteLength);
    assert.equal(Number(await cell(page, 'client', 'tokens')), 425, 'OpenAI bills 768x512 at 425 tokens');
    // The decision's point is marked on the plotted curves.
    assert.ok(await page.$('#plot svg #chosenPoint'));
    await screenshot(page, 'inspector-gateway');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('encodes in the browser: the gateway accepts the bitstream and its decode is close to the gateway’s own', async () => {
    const { page, problems } = await openWithImage(browser, gw, KODAK);
    await page.click('#serverBtn');
    assert.equal(await settled(page), 'done');
    const serverId = await page.$eval('#ids', (e) => (e as HTMLElement).dataset['id']!);
    await page.click('#browserBtn');
    assert.equal(await settled(page), 'done', await page.$eval('#error', (e) => e.textContent ?? ''));
    const browserId = await page.$eval('#ids', (e) => (e as HTMLElement).dataset['id']!);
    assert.notEqual(browserId, serverId);
    const get = async (id: string) => new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${id}`)).arrayBuffer());
    const [sBits, bBits] = [await get(serverId), await get(browserId)];
    const [s, b] = [parseContainer(sBits), parseContainer(bBits)];
    // Same container: codec, model field, flags, quality and size as the gateway's decision.
    assert.equal(b.codec, s.codec);
    assert.equal(b.modelIdPrefix, s.modelIdPrefix);
    assert.equal(b.flags, s.flags);
    assert.equal(b.qualityFixed, s.qualityFixed);
    assert.deepEqual([b.width, b.height], [s.width, s.height]);
    assert.equal(Number(await cell(page, 'uplink', 'bytes')), bBits.length, 'the uplink carried the bitstream');
    assert.ok(Number(await page.$eval('#saved', (e) => (e as HTMLElement).dataset['uplinkSaved'])) > 0);
    // Within the bound measured on 300 photos and 24 Kodak images (docs/inspector.md).
    const ratio = bBits.length / sBits.length;
    assert.ok(ratio > 0.6 && ratio < 1.45, `bytes browser/gateway ${ratio.toFixed(3)}`);
    const recon = async (id: string) => rgb(Buffer.from(await (await fetch(`${gw.base}/bitstreams/${id}/image?format=png`)).arrayBuffer()));
    const original = await rgb(KODAK);
    const dPsnr = psnr(original, await recon(browserId)) - psnr(original, await recon(serverId));
    assert.ok(dPsnr > -1.5 && dPsnr < 3, `PSNR browser - gateway ${dPsnr.toFixed(2)} dB`);
    await screenshot(page, 'inspector-browser');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('makes semantic AVIF in the browser: restoration flag and editor id, decoded through the restoration network', async () => {
    const { page, problems } = await openWithImage(browser, gw, KODAK);
    await page.click('input[name="mode"][value="explicit"]');
    await page.select('#codec', 'semantic-avif');
    await page.$eval('#quality', (e) => ((e as HTMLInputElement).value = '30'));
    await page.click('#browserBtn');
    assert.equal(await settled(page), 'done', await page.$eval('#error', (e) => e.textContent ?? ''));
    const id = await page.$eval('#ids', (e) => (e as HTMLElement).dataset['id']!);
    const bits = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${id}`)).arrayBuffer());
    const header = parseContainer(bits);
    const policy = (await (await fetch(`${gw.base}/policy`)).json()) as { editor: { id: string } };
    assert.equal(header.codec, CodecKind.SemanticAvif);
    assert.equal(header.modelIdPrefix, policy.editor.id.slice(0, 16));
    assert.equal(header.flags & Flags.Restoration, Flags.Restoration);
    assert.equal(header.qualityFixed, 30 * QUALITY_ONE);
    // The restored image differs from the plain AVIF decode of the same payload.
    const restored = await rgb(Buffer.from(await (await fetch(`${gw.base}/bitstreams/${id}/image?format=png`)).arrayBuffer()));
    const plain = await rgb(Buffer.from(header.latent));
    assert.ok(psnr(restored, plain) < 60, 'the restoration network ran');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('shows a clear error for a file that is not an image, on either path', async () => {
    const bad = path.join(dir, 'not-an-image.png');
    writeFileSync(bad, 'this is text, not a PNG\n'.repeat(20));
    const { page } = await openPage(browser, gw);
    await page.waitForFunction(() => document.body.dataset['state'] === 'idle');
    await pick(page, bad);
    await page.click('#serverBtn');
    assert.equal(await settled(page), 'error');
    const server = await page.$eval('#error', (e) => ({
      code: (e as HTMLElement).dataset['code'],
      text: e.textContent,
      hidden: (e as HTMLElement).hidden,
    }));
    assert.equal(server.hidden, false);
    assert.match(server.code!, /^(bad_image|unsupported_image_format)$/);
    assert.match(server.text!, new RegExp(`^${server.code}: `));
    await page.click('#browserBtn');
    assert.equal(await settled(page), 'error');
    assert.equal(await page.$eval('#error', (e) => (e as HTMLElement).dataset['code']), 'bad_image');
    await screenshot(page, 'inspector-bad-file');
    await page.close();
  });
});

describe('inspector page against a key-protected gateway', () => {
  let browser: Browser;
  let gw: TestGateway;

  before(async () => {
    browser = await launchChromium();
    gw = await startGateway('embedded', { VLMPRESS_API_KEYS: 'page-key-1' });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('is refused without the key, works once it is entered, and never puts the key in a URL', async () => {
    const page = await browser.newPage();
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${gw.base}/ui`);
    assert.equal(await settled(page), 'error');
    assert.equal(await page.$eval('#error', (e) => (e as HTMLElement).dataset['code']), 'unauthorized');
    await pick(page, KODAK);
    await page.click('#serverBtn');
    assert.equal(await settled(page), 'error');
    assert.equal(await page.$eval('#error', (e) => (e as HTMLElement).dataset['code']), 'unauthorized');
    await screenshot(page, 'inspector-no-key');

    await page.type('#apiKey', 'page-key-1');
    await page.$eval('#apiKey', (e) => e.dispatchEvent(new Event('change')));
    await page.waitForFunction(() => (document.querySelector<HTMLSelectElement>('#target')?.options.length ?? 0) > 0);
    await page.click('#serverBtn');
    assert.equal(await settled(page), 'done', await page.$eval('#error', (e) => e.textContent ?? ''));
    assert.equal(await page.evaluate(() => sessionStorage.getItem('vlmpress.apiKey')), 'page-key-1');
    assert.ok(!urls.some((u) => u.includes('page-key-1')), 'the key never appears in a URL');
    await page.close();
  });
});
