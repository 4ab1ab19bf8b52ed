/** The several-backends file is configuration: read, checked and its keys resolved by loadConfig, all problems reported at once. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { backendsFrom } from '../../src/lvlm-proxy/backends.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';

/** The folders the tests wrote their files in, removed at the end. */
const folders: string[] = [];
after(() => Promise.all(folders.map((d) => rm(d, { recursive: true, force: true }))));

async function backendsFile(content: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-backends-'));
  folders.push(dir);
  const file = path.join(dir, 'backends.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('backends file in the configuration', () => {
  it('resolves API keys from the environment given to loadConfig and routes by model', async () => {
    const file = await backendsFile({
      backends: [
        { name: 'qwen', url: 'http://127.0.0.1:9/v1/', api_key_env: 'QWEN_KEY', profile: 'qwen2-vl', models: ['qwen2-vl-7b', 'qwen*'] },
        { name: 'rest', url: 'https://example.com/v1', models: ['*'], default: true },
      ],
    });
    const config = loadConfig({ VLMPRESS_BACKENDS_FILE: file, QWEN_KEY: 'k-1' });
    assert.deepEqual(
      config.backends.map((b) => [b.name, b.url, b.apiKey, b.profile]),
      [
        ['qwen', 'http://127.0.0.1:9/v1', 'k-1', 'qwen2-vl'],
        ['rest', 'https://example.com/v1', undefined, 'openai'],
      ],
    );
    const backends = backendsFrom({ ...config, upstreamUrl: 'http://127.0.0.1:8/v1' });
    assert.equal(backends.route('qwen2-vl-72b')?.name, 'qwen');
    assert.equal(backends.route('gpt-4o')?.name, 'rest', 'the file names the default, not the shortcut');
    assert.equal(backends.list.at(-1)?.name, 'default');
  });

  it('refuses to start with every problem listed: a missing key, a bad URL, a bad profile, formats, budgets, duplicates, other settings', async () => {
    const file = await backendsFile({
      backends: [
        { name: 'a', url: 'ftp://x', api_key_env: 'NOT_SET_ANYWHERE', models: ['m'] },
        { name: 'a', url: 'http://h/v1', profile: 'gpt', models: [] },
        { name: 'c', url: 'http://h/v1', models: ['n'], accepts: ['heic'], max_image_tokens: 0 },
      ],
    });
    assert.throws(
      () => loadConfig({ VLMPRESS_BACKENDS_FILE: file, PORT: 'eighty' }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.problems.join('\n');
        for (const want of [
          'NOT_SET_ANYWHERE is not set',
          'backends[0].url must be http or https',
          'backends[1].profile must be one of',
          'backends[1].models must list',
          'backends[2].accepts must list formats among avif',
          'backends[2].max_image_tokens must be a positive integer',
          'names must be unique',
          'PORT must be an integer',
        ])
          assert.match(text, new RegExp(want.replace(/[[\]().]/g, '\\$&')));
        return true;
      },
    );
    const broken = await backendsFile('{not json');
    assert.throws(() => loadConfig({ VLMPRESS_BACKENDS_FILE: broken }), /VLMPRESS_BACKENDS_FILE .*JSON/);
    assert.throws(() => loadConfig({ VLMPRESS_BACKENDS_FILE: path.join(tmpdir(), 'no-such-dir', 'b.json') }), /ENOENT/);
  });
});
