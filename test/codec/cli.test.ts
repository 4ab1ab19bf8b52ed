import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { CLI, readShared } from '../helpers.js';

const exec = promisify(execFile);

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('vlmpress CLI', () => {
  let dir: string;
  let input: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-cli-'));
    input = path.join(dir, 'in.jpg');
    await writeFile(
      input,
      await sharp(readShared('data', 'kodak', 'kodim08.png'))
        .extract({ left: 0, top: 0, width: 200, height: 150 })
        .jpeg({ quality: 95 })
        .toBuffer(),
    );
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('takes any number of batch inputs: a command line past 29 KB, and a list on stdin', async () => {
    // onnxruntime-node segfaults creating a session under a command line over about 29 KB.
    const many = path.join(dir, 'many');
    const names: string[] = [];
    const tiny = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#406080' } })
      .png()
      .toBuffer();
    for (let i = 0; i < 700; i++) {
      names.push(path.join(dir, `a-file-name-long-enough-to-fill-the-command-line-${String(i).padStart(4, '0')}.png`));
      await writeFile(names.at(-1)!, tiny);
    }
    assert.ok(names.join(' ').length > 32 * 1024);
    const r = await run('decode', ...names, '--out-dir', many, '--format', 'png');
    // PNG inputs are not bitstreams: each is a typed per-file error, and the process itself survives.
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 700);
    assert.ok(lines.every((l) => l.error.code === 'bad_magic'));

    const list = path.join(dir, 'list.txt');
    await writeFile(list, names.slice(0, 3).join('\n') + '\n\n');
    const fromFile = await run('encode', '--inputs-from', list, '--out-dir', many, '--codec', 'webp', '-q', '50');
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout.trim().split('\n').length, 3);
    // Semantic AVIF (the bundled editor package) through the same batch path, and back.
    const semantic = await run('encode', '--inputs-from', list, '--out-dir', many, '--codec', 'semantic-avif', '-q', '30,60');
    assert.equal(semantic.code, 0, semantic.stderr);
    const made = semantic.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { output: string; bytes: number; quality: number });
    assert.equal(made.length, 6);
    const back = await run('decode', ...made.map((m) => m.output), '--out-dir', many, '--format', 'png');
    assert.equal(back.code, 0, back.stderr);
    const noDir = await run('encode', '--inputs-from', list);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /--inputs-from needs --out-dir/);
  });

  it('encodes and decodes many files in one run, reporting each one', async () => {
    const out = path.join(dir, 'batch');
    const second = path.join(dir, 'second.png');
    await writeFile(
      second,
      await sharp(readShared('data', 'kodak', 'kodim03.png'))
        .resize(96, 64)
        .png()
        .toBuffer(),
    );
    const enc = await run('encode', input, second, path.join(dir, 'missing.png'), '--out-dir', out, '-q', '1,3.5');
    assert.equal(enc.code, 1, 'one input failed');
    const lines = enc.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.quality ?? l.error.code),
      [1, 3.5, 1, 3.5, 'file_error'],
    );
    for (const l of lines.slice(0, 4)) assert.equal((await readFile(l.output)).length, l.bytes, 'bytes are the file size');
    const dec = await run('decode', ...lines.slice(0, 4).map((l) => l.output), '--out-dir', path.join(out, 'png'));
    assert.equal(dec.code, 0, dec.stderr);
    const decoded = dec.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      decoded.map((d) => path.basename(d.output)),
      ['in.q1.png', 'in.q3.5.png', 'second.q1.png', 'second.q3.5.png'],
    );
    assert.deepEqual([decoded[2].width, decoded[2].height], [96, 64]);
    await writeFile(path.join(out, 'in.png'), await readFile(second));
    const clash = await run('encode', input, path.join(out, 'in.png'), '--out-dir', out);
    assert.equal(clash.code, 2, 'two inputs with one name would overwrite each other');
  });

  it('encodes, inspects and decodes', async () => {
    const out = path.join(dir, 'a.vlmp');
    const enc = await run('encode', input, '-q', '4', '-o', out, '--json');
    assert.equal(enc.code, 0, enc.stderr);
    const summary = JSON.parse(enc.stdout);
    assert.deepEqual([summary.quality, summary.width, summary.height], [4, 200, 150]);
    const info = await run('info', out);
    assert.equal(info.code, 0, info.stderr);
    const meta = JSON.parse(info.stdout);
    assert.equal(meta.bytes, (await readFile(out)).length);
    assert.equal(meta.model.name, 'vlmp-mbv2-cpu-v1');
    assert.ok(Math.abs(meta.bpp - (8 * meta.bytes) / 30000) < 1e-9);
    for (const ext of ['png', 'webp', 'jpg']) {
      const img = path.join(dir, `out.${ext}`);
      const dec = await run('decode', out, '-o', img);
      assert.equal(dec.code, 0, dec.stderr);
      const m = await sharp(img).metadata();
      assert.deepEqual([m.width, m.height, m.format], [200, 150, ext === 'jpg' ? 'jpeg' : ext]);
    }
  });

  it('fits a byte budget', async () => {
    const out = path.join(dir, 'b.vlmp');
    const enc = await run('encode', input, '--max-bytes', '1500', '-o', out, '--json');
    assert.equal(enc.code, 0, enc.stderr);
    assert.ok(JSON.parse(enc.stdout).bytes <= 1500);
    assert.ok((await readFile(out)).length <= 1500);
  });

  it('exits 1 with the error code on bad input and 2 on usage errors', async () => {
    const notStream = await run('decode', input, '-o', path.join(dir, 'x.png'));
    assert.equal(notStream.code, 1);
    assert.match(notStream.stderr, /bad_magic/);
    const garbage = path.join(dir, 'garbage.png');
    await writeFile(garbage, 'not an image at all');
    const badImage = await run('encode', garbage, '-o', path.join(dir, 'x.vlmp'));
    assert.equal(badImage.code, 1);
    assert.match(badImage.stderr, /bad_image/);
    assert.equal((await run('encode', path.join(dir, 'missing.png'), '-o', path.join(dir, 'x.vlmp'))).code, 1);
    assert.match((await run('encode', input, '-q', '12', '-o', path.join(dir, 'x.vlmp'))).stderr, /invalid_argument/);
    assert.equal((await run('encode', input)).code, 2);
    assert.equal((await run('decode', input, '-o', path.join(dir, 'x.bmp'))).code, 2);
    assert.equal((await run('frobnicate', input)).code, 2);
    assert.equal((await run('encode', input, '-q', 'high', '-o', path.join(dir, 'x.vlmp'))).code, 2);
    assert.equal((await run('encode', input, '--bogus', '-o', path.join(dir, 'x.vlmp'))).code, 2);
  });
});
