/**
 * The proxy's upstream client against real HTTP servers on loopback that misbehave on purpose: a
 * backend slow to answer, one that is down, one that compresses its answer, a stream with pauses
 * longer than the timeout, a client that leaves mid-stream, and connection reuse. The upstream hop
 * does no codec work, so one job mode is enough.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startGateway, type TestGateway } from './harness.js';

const TIMEOUT_MS = 400;

function completion(text: string) {
  return {
    id: 'chatcmpl-x',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}

const chunk = (text: string) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;

describe('upstream client', () => {
  let server: Server;
  let gw: TestGateway;
  let client: OpenAI;
  const connections: number[] = [];
  /** how each streamed request ended on the upstream side: true when its response was finished */
  const streamEnds: Promise<boolean>[] = [];

  before(async () => {
    // The model name says how to behave.
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(text || '{}') as { model?: string };
        switch (body.model) {
          case 'slow-headers':
            setTimeout(
              () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('late'))),
              3 * TIMEOUT_MS,
            );
            return;
          case 'gzip':
            res
              .writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
              .end(gzipSync(JSON.stringify(completion('compressed answer'))));
            return;
          case 'slow-stream': {
            // Headers at once, then pauses longer than the header timeout: a stream may run as long as it runs.
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            const parts = ['one', ' two', ' three'];
            const next = () => {
              const p = parts.shift();
              if (p === undefined) return void res.end('data: [DONE]\n\n');
              res.write(chunk(p));
              setTimeout(next, 1.5 * TIMEOUT_MS);
            };
            next();
            return;
          }
          case 'endless-stream': {
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            const timer = setInterval(() => res.write(chunk('token ')), 20);
            streamEnds.push(new Promise((resolve) => res.on('close', () => (clearInterval(timer), resolve(res.writableFinished)))));
            return;
          }
          default:
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('ok')));
        }
      });
    });
    server.on('connection', () => connections.push(Date.now()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    gw = await startGateway('embedded', {
      VLMPRESS_UPSTREAM_URL: `http://127.0.0.1:${port}/v1`,
      VLMPRESS_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
    });
    client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.base}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps upstream connections alive between requests', async () => {
    const before = connections.length;
    for (let i = 0; i < 20; i++) {
      const r = await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.choices[0]!.message.content, 'ok');
    }
    assert.ok(connections.length - before <= 1, `${connections.length - before} upstream connections for 20 sequential requests`);
  });

  it('answers 504 upstream_timeout when the backend sends no headers in time', async () => {
    const res = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow-headers', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_timeout');
  });

  it('relays a compressed answer with its content-encoding, which the client decodes', async () => {
    const r = await client.chat.completions.create({ model: 'gzip', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.choices[0]!.message.content, 'compressed answer');
  });

  it('lets a stream run past the header timeout', async () => {
    const stream = await client.chat.completions.create({
      model: 'slow-stream',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    for await (const part of stream) text += part.choices[0]?.delta.content ?? '';
    assert.equal(text, 'one two three');
  });

  it('closes the upstream stream when the client leaves', async () => {
    const controller = new AbortController();
    const res = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'endless-stream', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    assert.equal(streamEnds.length, 1);
    assert.equal(await streamEnds[0], false, 'the upstream response was cut, not finished');
  });

  it('answers 502 upstream_unavailable when the backend is down', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const down = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: `http://127.0.0.1:${port}/v1` });
    try {
      const res = await fetch(`${down.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'any', messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 502);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_unavailable');
    } finally {
      await down.close();
    }
  });
});
