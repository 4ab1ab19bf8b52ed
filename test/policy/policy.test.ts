import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { describeModels, fittedSize } from '../../src/codec/index.js';
import { decidePolicy, needsImageStats } from '../../src/policy/policy.js';
import { parsePolicyTable, PolicyTableError, tableWithoutScreen } from '../../src/policy/policy-table.js';
import { resizeRuleFor } from '../../src/policy/resolution.js';
import { classifyTask } from '../../src/policy/task-classifier.js';
import { loadConfig } from '../../src/config/config.js';
import { startGateway } from '../gateway/harness.js';
import { closeCodecs, FIXTURES, readShared } from '../helpers.js';
import { imageStats } from '../../src/policy/image-stats.js';

after(closeCodecs);

describe('task classifier', () => {
  const cases: [string, string][] = [
    ['What does the sign say?', 'text'],
    ['Transcribe this receipt and give me the total.', 'text'],
    ['Extract the table into CSV.', 'text'],
    ['What is the price of the red item?', 'text'],
    ['Read the license plate of the car.', 'text'],
    ['Summarise this screenshot.', 'text'],
    ['How many people are in the photo?', 'detail'],
    ['Count the birds on the wire.', 'detail'],
    ['Is there a scratch or any defect on the surface?', 'detail'],
    ['Describe this image.', 'general'],
    ['What animal is this?', 'general'],
    ['Is this photo taken indoors or outdoors?', 'general'],
    ['How many words are written on the board?', 'text'],
  ];
  for (const [prompt, want] of cases) {
    it(`"${prompt}" -> ${want}`, () => assert.equal(classifyTask({ prompt }).taskClass, want));
  }
  it('a task hint beats the prompt', () => {
    assert.deepEqual(classifyTask({ task: 'ocr', prompt: 'Describe this image.' }), { taskClass: 'text', reason: 'task hint "ocr"' });
  });
});

describe('image statistics for requests without words', () => {
  it('tell rendered text from photos', async () => {
    for (const f of ['receipt-14px.png', 'document-11px.png']) {
      const s = await imageStats(await readFile(path.join(FIXTURES, 'text', f)), 1e8);
      assert.equal(s?.textLike, true, `${f}: ${JSON.stringify(s)}`);
    }
    for (const k of ['kodim01', 'kodim05', 'kodim08', 'kodim23']) {
      const s = await imageStats(readShared('data', 'kodak', `${k}.png`), 1e8);
      assert.equal(s?.textLike, false, `${k}: ${JSON.stringify(s)}`);
    }
    assert.equal(await imageStats(Buffer.from('not an image'), 1e8), null);
    const page = (await imageStats(await readFile(path.join(FIXTURES, 'text', 'receipt-14px.png')), 1e8))!;
    assert.deepEqual(classifyTask({ image: page }).taskClass, 'text');
    assert.deepEqual(classifyTask({ image: page, prompt: 'How many lines are there?' }).taskClass, 'detail', 'words beat the image');
  });
});

describe('backend resolution profiles', () => {
  const size = (profile: Parameters<typeof resizeRuleFor>[0], w: number, h: number, detail?: 'low' | 'high') =>
    fittedSize(w, h, resizeRuleFor(profile, detail, 4096).rule);
  it('downscale to what each backend sees, never up', () => {
    assert.deepEqual(size('openai', 4000, 3000, 'low'), { width: 512, height: 384 });
    assert.deepEqual(size('openai', 4000, 3000, 'high'), { width: 1024, height: 768 });
    assert.deepEqual(size('openai', 4000, 1000, 'high'), { width: 2048, height: 512 });
    assert.deepEqual(size('anthropic', 4000, 3000), { width: 1238, height: 928 });
    const q = size('qwen2-vl', 4000, 3000);
    assert.ok(q.width * q.height <= 1280 * 28 * 28 && q.width * q.height > 0.99 * 1280 * 28 * 28, JSON.stringify(q));
    assert.deepEqual(size('llava', 1000, 500), { width: 336, height: 168 });
    assert.deepEqual(size('llava', 300, 200), { width: 300, height: 200 });
    assert.deepEqual(
      fittedSize(3000, 2000, resizeRuleFor('openai', 'high', 1000).rule),
      { width: 1000, height: 666 },
      'the gateway cap applies too',
    );
  });
});

const MODEL_ID = 'a'.repeat(64);
function table(modelId = MODEL_ID) {
  const entry = (quality: number, reached = true) => ({ codec: 'vlmpress', quality, reached, bpp: 0.3, scores: { mbv1_agree: 0.981 } });
  const metrics = (accuracy: string[], agreement: string[]) => ({ accuracy, agreement });
  return {
    format: 'vlmpress-policy',
    format_version: 2,
    model: { name: 'm', id: modelId },
    targets: ['0.95', '0.98', '0.99', 'agreement:0.98'],
    default_target: '0.98',
    classes: {
      general: {
        metrics: metrics(['mbv2_top1', 'mbv1_top1'], ['mbv2_agree', 'mbv1_agree']),
        targets: { '0.95': entry(2), '0.98': entry(3), '0.99': entry(5), 'agreement:0.98': entry(7) },
      },
      text: {
        metrics: metrics(['ocr_paddle'], ['ocr_paddle']),
        targets: { '0.95': entry(5), '0.98': entry(6.5), '0.99': { ...entry(80), codec: 'sharp-webp' }, 'agreement:0.98': entry(7.5) },
      },
      detail: { metrics: metrics(['msssim'], ['msssim']), missing: ['msssim'] },
    },
  };
}

describe('policy decisions', () => {
  const config = loadConfig({ VLMPRESS_DEFAULT_QUALITY: '4' });
  const t = parsePolicyTable(table(), MODEL_ID, 'test');
  it('picks the measured quality for the class and target', () => {
    const d = decidePolicy(config, t, { prompt: 'Read the receipt' });
    assert.deepEqual([d.source, d.taskClass, d.target, d.quality], ['policy', 'text', '0.98', 6.5]);
    assert.match(d.reason, /prompt mentions "Read"/);
    assert.equal(decidePolicy(config, t, { prompt: 'What is this?', target: '0.95' }).quality, 2);
    assert.equal(decidePolicy(config, t, { prompt: 'What is this?', target: '0.99' }).quality, 5);
    const strict = decidePolicy(config, t, { prompt: 'What is this?', target: 'agreement:0.98' });
    assert.deepEqual([strict.quality, strict.target], [7, 'agreement:0.98']);
    assert.match(strict.reason, /keep 98% of the original's predictions \(agreement\): mbv2_agree and mbv1_agree/);
    assert.match(
      decidePolicy(config, t, { prompt: 'What is this?' }).reason,
      /keep 98% of the original's task accuracy: mbv2_top1 and mbv1_top1/,
    );
    const webp = decidePolicy(config, t, { task: 'ocr', target: '0.99' });
    assert.deepEqual([webp.codec, webp.quality], ['webp', 80]);
    assert.match(webp.reason, /webp quality 80 \(measured cheaper than the learned codec for text\)/);
    assert.equal(
      decidePolicy(config, t, { task: 'ocr', target: '0.99', quality: 3 }).codec,
      'learned',
      'an explicit quality means the learned codec',
    );
  });
  it('an explicit quality wins, a budget caps, a missing class falls back to the default', () => {
    assert.deepEqual(
      [decidePolicy(config, t, { quality: 7.5, prompt: 'Read it' }).quality, decidePolicy(config, t, { quality: 7.5 }).source],
      [7.5, 'request'],
    );
    const b = decidePolicy(config, t, { prompt: 'Read it', maxBytes: 1000 });
    assert.deepEqual([b.quality, b.maxBytes], [6.5, 1000]);
    const detail = decidePolicy(config, t, { prompt: 'How many birds?' });
    assert.deepEqual([detail.source, detail.quality], ['default', 4]);
    assert.deepEqual(decidePolicy(config, null, {}).source, 'default');
  });
  it('reads a version 1 table as agreement targets, so a request means what it meant', () => {
    const v1 = {
      ...table(),
      format_version: 1,
      targets: ['0.95', '0.98'],
      classes: {
        general: {
          metrics: ['mbv2_agree'],
          targets: {
            '0.95': { codec: 'vlmpress', quality: 4, reached: true, bpp: 1, scores: null },
            '0.98': { codec: 'vlmpress', quality: 6, reached: true, bpp: 1, scores: null },
          },
        },
      },
    };
    const old = parsePolicyTable(v1, MODEL_ID, 'v1.json');
    assert.deepEqual([old.targets, old.defaultTarget], [['agreement:0.95', 'agreement:0.98'], 'agreement:0.98']);
    assert.equal(decidePolicy(config, old, { task: 'general' }).quality, 6);
    assert.deepEqual(old.classes.general!.targets['agreement:0.95']!.metrics, ['mbv2_agree']);
  });
  it('never shrinks a text image under a token budget below its OCR floor', () => {
    const floored = table();
    (floored.classes.text.targets['0.98'] as { min_scale?: number }).min_scale = 0.75;
    const ft = parsePolicyTable(floored, MODEL_ID, 'test');
    const size = { width: 2000, height: 1500 };
    const ask = (prompt: string, maxImageTokens: number) =>
      decidePolicy(config, ft, { prompt, profile: 'openai', detail: 'high', maxImageTokens, size });
    // OpenAI view: 1024x768 (765 tokens). A photo may go down to one tile (512 px long side)...
    assert.equal(ask('What is this?', 300).resize.maxLongSide, 512);
    // ...text only to 0.75 of 1024 = 768 px, which already needs 4 tiles (765 tokens).
    assert.throws(
      () => ask('Read the receipt', 300),
      (e: unknown) =>
        (e as { code?: string }).code === 'token_budget_too_small' && /smaller than 0.75 of its size/.test((e as Error).message),
    );
    assert.equal(ask('Read the receipt', 800).resize.maxLongSide, 2048, 'within the budget: the view unchanged');
  });
  it('avif-screen only for images that look rendered, and never without avifenc', () => {
    const raw = table();
    const alt = { codec: 'sharp-avif', quality: 35, reached: true, bpp: 0.24, scores: { ocr_paddle: 0.99 } };
    raw.classes.text.targets['0.98'] = {
      ...raw.classes.text.targets['0.98'],
      codec: 'sharp-avif-screen',
      quality: 25,
      without_screen: alt,
    } as never;
    const full = parsePolicyTable(raw, MODEL_ID, 'test');
    const page = { textLike: true, background: 0.9, edges: 0.05 };
    const photo = { textLike: false, background: 0.1, edges: 0.01 };
    const d = decidePolicy(config, full, { prompt: 'Read the receipt', image: page });
    assert.deepEqual([d.codec, d.quality], ['avif-screen', 25]);
    // avif-screen is measured on rendered text only: a photo of a sign, or no statistics, takes the other choice.
    const sign = decidePolicy(config, full, { prompt: 'Read the sign', image: photo });
    assert.deepEqual([sign.codec, sign.quality, sign.expected], ['avif', 35, { ocr_paddle: 0.99 }]);
    assert.match(sign.reason, /not avif-screen: the image does not look like rendered text/);
    assert.equal(decidePolicy(config, full, { prompt: 'Read the receipt' }).codec, 'avif');
    assert.equal(needsImageStats({ prompt: 'Read the receipt' }), true, 'text requests look at the image');
    const without = tableWithoutScreen(full);
    const w = decidePolicy(config, without, { prompt: 'Read the receipt', image: page });
    assert.deepEqual([w.codec, w.quality, w.expected], ['avif', 35, { ocr_paddle: 0.99 }]);
    assert.deepEqual(without.classes.general, full.classes.general, 'entries without avif-screen are unchanged');
    (raw.classes.text.targets['0.98'] as unknown as { without_screen: unknown }).without_screen = { codec: 'vvc', quality: 3 };
    assert.throws(() => parsePolicyTable(raw, MODEL_ID, 'x.json'), /without_screen needs a known codec/);
  });
  it('refuses a table built for another model', () => {
    assert.throws(() => parsePolicyTable(table('b'.repeat(64)), MODEL_ID, 'x.json'), PolicyTableError);
    assert.throws(() => parsePolicyTable({ ...table(), default_target: '0.5' }, MODEL_ID, 'x.json'), /default_target/);
  });
  it('refuses a table naming a codec the gateway cannot make, at load', () => {
    const t = table();
    (t.classes.text.targets['0.99'] as { codec: string }).codec = 'vvc';
    assert.throws(
      () => parsePolicyTable(t, MODEL_ID, 'x.json'),
      /classes\.text\.targets\.0\.99: unknown codec "vvc" \(known: vlmpress, sharp-avif/,
    );
  });
});

describe('the gateway applies the policy table', () => {
  it('encodes at the quality the table gives for the class and target, and says why', async () => {
    const [model] = await describeModels();
    const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-policy-'));
    const file = path.join(dir, 'policy.json');
    await writeFile(file, JSON.stringify(table(model!.id)));
    const gw = await startGateway('embedded', { VLMPRESS_POLICY_FILE: file });
    try {
      const png = await sharp(readShared('data', 'kodak', 'kodim05.png'))
        .extract({ left: 0, top: 0, width: 200, height: 120 })
        .png()
        .toBuffer();
      const post = (body: Record<string, unknown>) =>
        fetch(`${gw.base}/compress`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image: png.toString('base64'), ...body }),
        });
      const text = await post({ prompt: 'Transcribe the text', target: '98%' });
      const r = (await text.json()) as { quality: number; policy: { source: string; taskClass: string; reason: string } };
      assert.deepEqual([r.quality, r.policy.source, r.policy.taskClass], [6.5, 'policy', 'text']);
      assert.equal(text.headers.get('x-vlmpress-policy'), 'policy; class=text; target=0.98; quality=6.5');
      const general = (await (await post({ task: 'general', target: 0.95 })).json()) as { quality: number };
      assert.equal(general.quality, 2);
      // Where the table measured a classical codec cheaper, the bitstream is that codec in the container, and decodes like any other.
      const cheap = await post({ task: 'ocr', target: '0.99' });
      const c = (await cheap.json()) as { id: string; quality: number; model: { name: string } };
      assert.deepEqual([c.model.name, c.quality], ['webp', 80]);
      assert.equal(cheap.headers.get('x-vlmpress-policy'), 'policy; class=text; codec=webp; target=0.99; quality=80');
      const img = await fetch(`${gw.base}/bitstreams/${c.id}/image?format=png`);
      assert.equal(img.status, 200);
      assert.deepEqual([(await sharp(Buffer.from(await img.arrayBuffer())).metadata()).width], [200]);
      // No hint and no prompt: a page of text is classed by its looks.
      const receipt = await readFile(path.join(FIXTURES, 'text', 'receipt-14px.png'));
      const looks = (await (
        await fetch(`${gw.base}/compress`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image: receipt.toString('base64') }),
        })
      ).json()) as { policy: { taskClass: string; reason: string } };
      assert.equal(looks.policy.taskClass, 'text');
      assert.match(looks.policy.reason, /the image looks like text/);
      const bad = await post({ target: '0.5' });
      assert.equal(bad.status, 400);
      const badTask = await post({ task: 'astrology' });
      assert.equal(badTask.status, 400);
    } finally {
      await gw.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the shipped table: rendered text goes to avif-screen, a photo with the same prompt and a gateway without avifenc to sharp AVIF', async () => {
    const receipt = (await readFile(path.join(FIXTURES, 'text', 'receipt-14px.png'))).toString('base64');
    const photo = (
      await sharp(readShared('data', 'kodak', 'kodim05.png'))
        .png()
        .toBuffer()
    ).toString('base64');
    type Answer = { id: string; model: { name: string }; policy: { codec: string; reason: string } };
    const ask = async (base: string, image: string) => {
      const r = await fetch(`${base}/compress`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image, prompt: 'Transcribe the text', target: '0.98' }),
      });
      assert.equal(r.status, 200);
      return (await r.json()) as Answer;
    };
    const gw = await startGateway('embedded');
    try {
      const page = await ask(gw.base, receipt);
      assert.deepEqual([page.policy.codec, page.model.name], ['avif-screen', 'avif-screen']);
      const img = await fetch(`${gw.base}/bitstreams/${page.id}/image?format=png`);
      assert.equal((await sharp(Buffer.from(await img.arrayBuffer())).metadata()).width, 360);
      const sign = await ask(gw.base, photo);
      assert.equal(sign.policy.codec, 'avif');
      assert.match(sign.policy.reason, /not avif-screen: the image does not look like rendered text/);
    } finally {
      await gw.close();
    }
    const without = await startGateway('embedded', { VLMPRESS_AVIFENC: '/nonexistent/avifenc' });
    try {
      assert.equal((await ask(without.base, receipt)).policy.codec, 'avif');
    } finally {
      await without.close();
    }
  });
});
