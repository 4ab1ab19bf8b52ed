/** Semantic AVIF: the bundled editor package's pre-editor before sharp's AVIF, in the VLMP container. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { classicalPayload } from '../../src/codec/classical.js';
import { CodecKind, Flags, parseContainer, serialiseContainer } from '../../src/codec/container.js';
import { runEditorGraph } from '../../src/codec/editor-package.js';
import { Codec, CodecError, findModelDirs, type RgbImage } from '../../src/codec/index.js';
import { closeCodecs, FIXTURES, psnr, rgbCrop, sharedCodec, sharedFile } from '../helpers.js';

const GOLDEN = path.join(FIXTURES, 'preedit-golden');

async function rgbFile(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

describe('semantic AVIF (pre-editor + AVIF)', () => {
  let codec: Codec;
  let img: RgbImage;
  before(async () => {
    codec = await sharedCodec();
    img = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 131, 77, 201, 143);
  });
  after(closeCodecs);

  it('is loaded from the bundled models and named in the bitstream', async () => {
    const [editor] = codec.editorInfo;
    assert.ok(editor, 'the bundled models include an editor package');
    assert.ok(editor.graphs.includes('preeditor'));
    const r = await codec.encodePixels(img, { codec: 'semantic-avif', quality: 40 });
    assert.deepEqual([r.model.name, r.model.id, r.quality, r.width, r.height], [editor.name, editor.id, 40, 201, 143]);
    const info = codec.inspect(r.bitstream);
    assert.equal(info.codec, 'semantic-avif');
    assert.deepEqual(info.model, { idPrefix: editor.id.slice(0, 16), name: editor.name, id: editor.id });
    assert.equal(info.flags.restoration, editor.graphs.includes('restoration'));
    const d = await codec.decode(r.bitstream);
    assert.deepEqual([d.width, d.height, d.quality, d.model.name], [201, 143, 40, editor.name]);
    assert.ok(psnr(img, d) > 27, String(psnr(img, d)));
  });

  it('edits for the quality it codes at: the payload differs from plain AVIF, sizes grow with quality', async () => {
    const sizes: number[] = [];
    for (const q of [15, 45, 85]) {
      const semantic = await codec.encodePixels(img, { codec: 'semantic-avif', quality: q });
      const plain = await codec.encodePixels(img, { codec: 'avif', quality: q });
      assert.notDeepEqual(parseContainer(semantic.bitstream).latent, parseContainer(plain.bitstream).latent, `q${q}`);
      sizes.push(semantic.bytes);
    }
    assert.ok(sizes[0]! < sizes[1]! && sizes[1]! < sizes[2]!, sizes.join(' < '));
  });

  it('fits a byte budget, editing again at each quality it tries', async () => {
    const r = await codec.encodePixels(img, { codec: 'semantic-avif', quality: 90, maxBytes: 2500 });
    assert.ok(r.bytes <= 2500 && r.quality < 90 && r.probes > 1, JSON.stringify({ bytes: r.bytes, q: r.quality, probes: r.probes }));
    const next = await codec.encodePixels(img, { codec: 'semantic-avif', quality: r.quality + 1 });
    assert.ok(next.bytes > 2500, 'one step up would not fit');
  });

  it('matches the PyTorch pre-editor on the golden image within one level (ONNX Runtime CPU, any thread count)', async () => {
    const meta = JSON.parse(readFileSync(path.join(GOLDEN, 'golden.json'), 'utf8')) as { quality: number; package_id: string };
    const editor = codec.editor(meta.package_id);
    const input = await rgbFile(path.join(GOLDEN, 'input.png'));
    const expected = await rgbFile(path.join(GOLDEN, 'edited.png'));
    for (const threads of [1, 2]) {
      const c = threads === 1 ? await sharedCodec({ session: { intraOpThreads: 1 } }) : codec;
      const got = await runEditorGraph(c.editor(editor.manifest.id).preeditor!, input, meta.quality);
      let worst = 0;
      let differing = 0;
      for (let i = 0; i < got.data.length; i++) {
        const d = Math.abs(got.data[i]! - expected.data[i]!);
        worst = Math.max(worst, d);
        if (d) differing++;
      }
      assert.ok(worst <= 1, `threads ${threads}: largest difference ${worst}`);
      assert.ok(differing / got.data.length < 0.01, `threads ${threads}: ${differing} samples differ by one level`);
    }
  });

  it('decodes without its package unless the stream asks for restoration; the flag is refused on other codecs', async () => {
    const made = parseContainer((await codec.encodePixels(img, { codec: 'semantic-avif', quality: 30 })).bitstream);
    const stranger = 'f'.repeat(16);
    const plainFlagged = serialiseContainer({ ...made, flags: 0, modelIdPrefix: stranger });
    const d = await codec.decode(plainFlagged);
    assert.deepEqual([d.width, d.model.name], [201, 'semantic-avif']);
    assert.deepEqual(classicalPayload(plainFlagged)?.codec, 'avif', 'without restoration the AVIF file is the reconstruction');
    const restoring = serialiseContainer({ ...made, flags: Flags.Restoration, modelIdPrefix: stranger });
    assert.equal(classicalPayload(restoring), null, 'a stream decoded through restoration is never forwarded as its AVIF');
    await assert.rejects(codec.decode(restoring), (e: unknown) => e instanceof CodecError && e.code === 'unknown_model');
    const avifWithFlag = serialiseContainer({ ...made, codec: CodecKind.Avif, flags: Flags.Restoration, modelIdPrefix: '0'.repeat(16) });
    assert.throws(
      () => parseContainer(avifWithFlag),
      (e: unknown) => e instanceof CodecError && e.code === 'bad_header',
    );
  });

  it('runs a restoration graph after decoding when the package has one, and never forwards that AVIF as it is', async () => {
    // A package whose restoration role holds a real network (the shipped pre-editor's graph, which
    // also maps an image and a quality to an image): the mechanics are what is under test here.
    const shipped = codec.editor();
    const dir = mkdtempSync(path.join(tmpdir(), 'vlmpress-editor-'));
    try {
      const graph = readFileSync(path.join(shipped.dir, shipped.manifest.graphs.preeditor!.file));
      writeFileSync(path.join(dir, 'restoration.onnx'), graph);
      const digest = createHash('sha256').update(graph).digest('hex');
      const graphs = { restoration: { file: 'restoration.onnx', sha256: digest } };
      const id = createHash('sha256').update(`restoration:${digest}\n`).digest('hex');
      writeFileSync(
        path.join(dir, 'manifest.json'),
        JSON.stringify({ format: 'vlmpress-editor', format_version: 1, name: 'restore-only', id, core: 'avif', graphs }),
      );
      const [codecPackage] = await findModelDirs();
      const withRestoration = await Codec.load({ modelDirs: [codecPackage!, dir] });
      try {
        const r = await withRestoration.encodePixels(img, { codec: 'semantic-avif', quality: 30, model: 'restore-only' });
        const c = parseContainer(r.bitstream);
        assert.equal(c.flags & Flags.Restoration, Flags.Restoration);
        assert.equal(classicalPayload(r.bitstream), null);
        const restored = await withRestoration.decode(r.bitstream);
        const avifOnly = await withRestoration.decode(serialiseContainer({ ...c, flags: 0 }));
        assert.equal(restored.model.name, 'restore-only');
        assert.notDeepEqual(restored.data, avifOnly.data, 'the restoration graph ran');
        const expected = await runEditorGraph(withRestoration.editor('restore-only').restoration!, avifOnly, 30);
        assert.deepEqual(restored.data, expected.data);
        // The shared codec does not have this package: the stream names it and cannot be decoded there.
        await assert.rejects(codec.decode(r.bitstream), (e: unknown) => e instanceof CodecError && e.code === 'unknown_model');
      } finally {
        await withRestoration.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing editor package clearly', async () => {
    await assert.rejects(
      codec.encodePixels(img, { codec: 'semantic-avif', quality: 40, model: 'no-such-editor' }),
      (e: unknown) => e instanceof CodecError && e.code === 'unknown_model' && /no-such-editor/.test(e.message),
    );
  });
});
