/**
 * Semantic AVIF: sharp's AVIF in the VLMP container with an editor package's networks around it. The
 * bundled package holds the restoration network (run after decoding); the pre-editor's mechanics
 * (run before the encoder, for the quality coded at) are checked with a package whose pre-editor
 * role holds that same real network, which also maps an image and a quality to an image.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { classicalPayload } from '../../src/codec/classical.js';
import { CodecKind, Flags, parseContainer, serialiseContainer } from '../../src/codec/container.js';
import { runEditorGraph, runRestoration } from '../../src/codec/editor-package.js';
import { Codec, CodecError, findModelDirs, WorkStoppedError, type RgbImage } from '../../src/codec/index.js';
import { closeCodecs, FIXTURES, levelDifference, psnr, rgbCrop, rgbOf, sharedCodec, sharedFile } from '../helpers.js';

const GOLDEN = path.join(FIXTURES, 'editor-golden');

/** A package in a temporary folder whose graph (in `role`) is the bundled package's restoration network. */
function packageOfShippedGraph(codec: Codec, name: string, role = 'preeditor', supersedes?: string[]): string {
  const shipped = codec.editor();
  const graph = readFileSync(path.join(shipped.dir, shipped.manifest.graphs.restoration!.file));
  const dir = mkdtempSync(path.join(tmpdir(), 'vlmpress-editor-'));
  writeFileSync(path.join(dir, `${role}.onnx`), graph);
  const digest = createHash('sha256').update(graph).digest('hex');
  const graphs = { [role]: { file: `${role}.onnx`, sha256: digest } };
  const id = createHash('sha256').update(`${role}:${digest}\n`).digest('hex');
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({ format: 'vlmpress-editor', format_version: 1, name, id, core: 'avif', graphs, ...(supersedes ? { supersedes } : {}) }),
  );
  return dir;
}

describe('semantic AVIF (AVIF with the editor networks around it)', () => {
  let codec: Codec;
  let img: RgbImage;
  let editing: Codec;
  let editingDir: string;
  before(async () => {
    codec = await sharedCodec();
    img = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 131, 77, 201, 143);
    editingDir = packageOfShippedGraph(codec, 'edit-first');
    const [codecPackage] = await findModelDirs();
    editing = await Codec.load({ modelDirs: [codecPackage!, editingDir] });
  });
  after(async () => {
    await editing.close();
    rmSync(editingDir, { recursive: true, force: true });
    await closeCodecs();
  });

  it('is loaded from the bundled models, named in the bitstream, and restores after decoding', async () => {
    const [editor] = codec.editorInfo;
    assert.ok(editor, 'the bundled models include an editor package');
    assert.deepEqual(editor.graphs, ['restoration']);
    const r = await codec.encodePixels(img, { codec: 'semantic-avif', quality: 40 });
    assert.deepEqual([r.model.name, r.model.id, r.quality, r.width, r.height], [editor.name, editor.id, 40, 201, 143]);
    const info = codec.inspect(r.bitstream);
    assert.equal(info.codec, 'semantic-avif');
    assert.deepEqual(info.model, { idPrefix: editor.id.slice(0, 16), name: editor.name, id: editor.id });
    assert.equal(info.flags.restoration, true);
    // No pre-editor: the AVIF file inside is plain AVIF's at the same quality, byte for byte.
    const plain = await codec.encodePixels(img, { codec: 'avif', quality: 40 });
    assert.deepEqual(parseContainer(r.bitstream).latent, parseContainer(plain.bitstream).latent);
    assert.equal(classicalPayload(r.bitstream), null, 'a stream decoded through restoration is never forwarded as its AVIF');
    const d = await codec.decode(r.bitstream);
    const avifOnly = await codec.decode(plain.bitstream);
    assert.deepEqual([d.width, d.height, d.quality, d.model.name], [201, 143, 40, editor.name]);
    assert.notDeepEqual(d.data, avifOnly.data, 'the restoration network ran');
    const expected = await runEditorGraph(codec.editor().restoration!, avifOnly, 40);
    assert.deepEqual(d.data, expected.data);
    assert.ok(psnr(img, d) > 27, String(psnr(img, d)));
    // A codec without the package cannot decode the stream: it names the package it needs.
    const [codecPackage] = await findModelDirs();
    const without = await Codec.load({ modelDirs: [codecPackage!] });
    try {
      await assert.rejects(without.decode(r.bitstream), (e: unknown) => e instanceof CodecError && e.code === 'unknown_model');
    } finally {
      await without.close();
    }
  });

  it('runs a pre-editor for the quality it codes at: the payload differs from plain AVIF, sizes grow with quality', async () => {
    const sizes: number[] = [];
    for (const q of [15, 45, 85]) {
      const semantic = await editing.encodePixels(img, { codec: 'semantic-avif', quality: q, model: 'edit-first' });
      const plain = await editing.encodePixels(img, { codec: 'avif', quality: q });
      assert.notDeepEqual(parseContainer(semantic.bitstream).latent, parseContainer(plain.bitstream).latent, `q${q}`);
      assert.equal(parseContainer(semantic.bitstream).flags & Flags.Restoration, 0, 'no restoration graph, no flag');
      assert.equal(classicalPayload(semantic.bitstream)?.codec, 'avif', 'without restoration the AVIF file is the reconstruction');
      sizes.push(semantic.bytes);
    }
    assert.ok(sizes[0]! < sizes[1]! && sizes[1]! < sizes[2]!, sizes.join(' < '));
    const edited = await runEditorGraph(editing.editor('edit-first').preeditor!, img, 45);
    const direct = await editing.encodePixels(edited, { codec: 'avif', quality: 45 });
    const semantic = await editing.encodePixels(img, { codec: 'semantic-avif', quality: 45, model: 'edit-first' });
    assert.deepEqual(parseContainer(semantic.bitstream).latent, parseContainer(direct.bitstream).latent, 'the edit, then AVIF');
  });

  it('fits a byte budget, editing again at each quality it tries', async () => {
    const r = await editing.encodePixels(img, { codec: 'semantic-avif', quality: 90, maxBytes: 2500, model: 'edit-first' });
    assert.ok(r.bytes <= 2500 && r.quality < 90 && r.probes > 1, JSON.stringify({ bytes: r.bytes, q: r.quality, probes: r.probes }));
    const next = await editing.encodePixels(img, { codec: 'semantic-avif', quality: r.quality + 1, model: 'edit-first' });
    assert.ok(next.bytes > 2500, 'one step up would not fit');
  });

  it('matches PyTorch on the golden images within one level, every shipped graph (ONNX Runtime CPU, any thread count)', async () => {
    const packages = readdirSync(GOLDEN);
    assert.deepEqual(packages.sort(), codec.editorInfo.map((e) => e.name).sort(), 'one golden fixture per shipped editor package');
    for (const name of packages) {
      const dir = path.join(GOLDEN, name);
      const meta = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as {
        quality: number;
        package_id: string;
        graphs: Record<'preeditor' | 'restoration', { input: string; output: string }>;
      };
      const editor = codec.editor(meta.package_id);
      assert.deepEqual(Object.keys(meta.graphs), Object.keys(editor.manifest.graphs), name);
      for (const [role, files] of Object.entries(meta.graphs) as ['preeditor' | 'restoration', { input: string; output: string }][]) {
        const input = await rgbOf(path.join(dir, files.input));
        const expected = await rgbOf(path.join(dir, files.output));
        for (const threads of [1, 2]) {
          const c = threads === 1 ? await sharedCodec({ session: { intraOpThreads: 1 } }) : codec;
          const got = await runEditorGraph(c.editor(editor.manifest.id)[role]!, input, meta.quality);
          const { worst, differing } = levelDifference(got, expected);
          const where = `${name} ${role}, threads ${threads}`;
          assert.ok(worst <= 1, `${where}: largest difference ${worst}`);
          assert.ok(differing / got.data.length < 0.01, `${where}: ${differing} samples differ by one level`);
        }
      }
    }
  });

  it('restores tile by tile within one level of the one-run pixels, every shipped package, with a safe point per tile', async () => {
    // Odd sides and tiles of 96 px: ragged right and bottom tiles, inner edges everywhere.
    const photo = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 3, 5, 331, 257);
    for (const { id } of codec.editorInfo) {
      const restoration = codec.editor(id).restoration;
      if (!restoration) continue;
      const whole = await runEditorGraph(restoration, photo, 35);
      let asked = 0;
      const tiled = await runRestoration(restoration, photo, 35, () => (asked++, false), 96);
      assert.equal(asked, 4 * 3, 'one safe point before each of the 4 x 3 tiles');
      const { worst, differing } = levelDifference(whole, tiled);
      assert.ok(worst <= 1 && differing / whole.data.length < 0.001, `${id}: worst ${worst}, ${differing} samples differ`);
      let calls = 0;
      await assert.rejects(
        runRestoration(restoration, photo, 35, () => ++calls > 2, 96),
        WorkStoppedError,
        'stops at the third tile when asked to',
      );
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

  it('encodes with the package that supersedes another by default; streams made with the old one still decode', async () => {
    const newerDir = packageOfShippedGraph(codec, 'restore-newer', 'restoration', ['edit-first']);
    const [codecPackage] = await findModelDirs();
    const both = await Codec.load({ modelDirs: [codecPackage!, editingDir, newerDir] });
    try {
      assert.deepEqual(
        both.editorInfo.map((e) => e.name),
        ['restore-newer', 'edit-first'],
      );
      const made = await both.encodePixels(img, { codec: 'semantic-avif', quality: 35 });
      assert.equal(made.model.name, 'restore-newer');
      const old = await editing.encodePixels(img, { codec: 'semantic-avif', quality: 35 });
      assert.equal(old.model.name, 'edit-first');
      assert.deepEqual((await both.decode(old.bitstream)).data, (await editing.decode(old.bitstream)).data);
    } finally {
      await both.close();
      rmSync(newerDir, { recursive: true, force: true });
    }
    const bad = packageOfShippedGraph(codec, 'self-superseding', 'restoration', ['self-superseding']);
    try {
      await assert.rejects(
        Codec.load({ modelDirs: [codecPackage!, bad] }),
        (e: unknown) => e instanceof CodecError && e.code === 'bad_model_package' && /supersedes/.test(e.message),
      );
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('names a missing editor package clearly', async () => {
    await assert.rejects(
      codec.encodePixels(img, { codec: 'semantic-avif', quality: 40, model: 'no-such-editor' }),
      (e: unknown) => e instanceof CodecError && e.code === 'unknown_model' && /no-such-editor/.test(e.message),
    );
  });
});
