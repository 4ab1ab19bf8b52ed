/** Backends speak one API each: the file says which, the profile follows it, and routing keeps a model on its API's backend. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBackends } from '../../src/config/backends-file.js';
import { Backends } from '../../src/lvlm-proxy/backends.js';
import { loadConfig } from '../../src/config/config.js';

describe('backends by API', () => {
  it('reads api, with each provider API’s own token profile unless the entry names one', () => {
    const problems: string[] = [];
    const list = parseBackends(
      {
        backends: [
          { name: 'claude', api: 'anthropic', url: 'https://api.anthropic.com/', models: ['claude-*'] },
          { name: 'gem', api: 'gemini', url: 'https://generativelanguage.googleapis.com', models: ['gemini-*'], default: true },
          { name: 'qwen', url: 'http://127.0.0.1:8000/v1', profile: 'qwen2-vl', models: ['*'] },
        ],
      },
      'b.json',
      {},
      problems,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(
      list.map((b) => [b.name, b.api, b.profile, b.url]),
      [
        ['claude', 'anthropic', 'anthropic', 'https://api.anthropic.com'],
        ['gem', 'gemini', 'gemini', 'https://generativelanguage.googleapis.com'],
        ['qwen', 'openai', 'qwen2-vl', 'http://127.0.0.1:8000/v1'],
      ],
    );
    const backends = new Backends(list);
    assert.equal(backends.route('claude-sonnet-4', 'anthropic')?.name, 'claude');
    // Names and prefixes are matched over every API (the caller refuses a mismatch, never reroutes it)...
    assert.equal(backends.route('claude-sonnet-4', 'gemini')?.name, 'claude');
    // ...while `*` and the default are the route's own API's first.
    assert.equal(backends.route('some-model', 'openai')?.name, 'qwen');
    assert.equal(backends.route('some-model', 'gemini')?.name, 'gem');
    assert.equal(backends.route('some-model', 'anthropic')?.name, 'qwen', 'no catch-all of its own: the first catch-all (a mismatch)');
    assert.equal(backends.route('some-model')?.name, 'qwen', 'without an API, as before: the first `*`');
  });

  it('refuses an unknown API, and extra formats on the providers’ own APIs', () => {
    const problems: string[] = [];
    parseBackends(
      {
        backends: [
          { name: 'a', api: 'cohere', url: 'http://h', models: ['m'] },
          { name: 'b', api: 'anthropic', url: 'http://h', models: ['n'], accepts: ['avif'] },
          { name: 'c', url: 'http://h/v1', models: ['o'], accepts: ['avif'] },
        ],
      },
      'b.json',
      {},
      problems,
    );
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /backends\[0\]\.api must be one of openai, anthropic, gemini/);
    assert.match(problems[1]!, /backends\[1\]\.accepts: the anthropic API reads no extra formats/);
  });

  it('gives the VLMPRESS_UPSTREAM_URL backend its API and that API’s profile', () => {
    const config = loadConfig({ VLMPRESS_UPSTREAM_URL: 'https://api.anthropic.com', VLMPRESS_UPSTREAM_API: 'anthropic' });
    assert.equal(config.upstreamApi, 'anthropic');
    assert.equal(config.upstreamProfile, 'anthropic');
    assert.equal(loadConfig({ VLMPRESS_UPSTREAM_API: 'gemini', VLMPRESS_UPSTREAM_PROFILE: 'none' }).upstreamProfile, 'none');
    assert.throws(() => loadConfig({ VLMPRESS_UPSTREAM_API: 'bard' }), /VLMPRESS_UPSTREAM_API must be one of openai, anthropic, gemini/);
  });
});
