/**
 * A fake OpenAI-compatible LVLM server on loopback (a real HTTP server) that records every request
 * it receives. It answers chat completions and Responses API requests as JSON or as an SSE stream,
 * fails on demand (a model named "fail-<status>"), and lists its models.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface FakeUpstream {
  url: string;
  received: Received[];
  models: string[];
  close(): Promise<void>;
}

function completion(model: string, text: string) {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
  };
}

function responseObject(model: string, text: string, status: 'in_progress' | 'completed') {
  const output =
    status === 'completed'
      ? [
          {
            type: 'message',
            id: 'msg_fake',
            role: 'assistant',
            status: 'completed',
            content: [{ type: 'output_text', text, annotations: [] }],
          },
        ]
      : [];
  return {
    id: 'resp_fake',
    object: 'response',
    created_at: 1_700_000_000,
    model,
    status,
    output,
    usage: status === 'completed' ? { input_tokens: 10, output_tokens: 3, total_tokens: 13 } : null,
  };
}

/** Responses API: `input_image` parts counted, the answer as JSON or as typed SSE events. */
function answerResponses(res: ServerResponse, body: any, name: string): void {
  const items: any[] = typeof body.input === 'string' ? [] : body.input;
  const images = items.flatMap((item) => (Array.isArray(item.content) ? item.content.filter((p: any) => p.type === 'input_image') : []));
  const answer = `${name} saw ${images.length} image(s)`;
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-req-2' });
    res.end(JSON.stringify(responseObject(body.model, answer, 'completed')));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let seq = 0;
  const send = (event: Record<string, unknown>) =>
    res.write(`event: ${event['type']}\ndata: ${JSON.stringify({ ...event, sequence_number: seq++ })}\n\n`);
  send({ type: 'response.created', response: responseObject(body.model, '', 'in_progress') });
  const words = answer.split(' ');
  let i = 0;
  const tick = () => {
    if (i < words.length) {
      send({
        type: 'response.output_text.delta',
        item_id: 'msg_fake',
        output_index: 0,
        content_index: 0,
        delta: (i ? ' ' : '') + words[i],
        logprobs: [],
      });
      i++;
      setTimeout(tick, 5);
    } else {
      send({ type: 'response.completed', response: responseObject(body.model, answer, 'completed') });
      res.end();
    }
  };
  tick();
}

export async function startFakeUpstream(options: { models?: string[]; name?: string } = {}): Promise<FakeUpstream> {
  const received: Received[] = [];
  const models = options.models ?? ['fake-vlm'];
  const name = options.name ?? 'fake';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text ? JSON.parse(text) : undefined;
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: name })) }));
        return;
      }
      if (req.method !== 'POST' || (req.url !== '/v1/chat/completions' && req.url !== '/v1/responses')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', code: null } }));
        return;
      }
      const failure = /^fail-(\d{3})$/.exec(body.model);
      if (failure) {
        res.writeHead(Number(failure[1]), { 'content-type': 'application/json', 'x-upstream-marker': 'yes' });
        res.end(JSON.stringify({ error: { message: `upstream says ${failure[1]}`, type: 'rate_limit_error', code: 'fake_failure' } }));
        return;
      }
      if (req.url === '/v1/responses') return void answerResponses(res, body, name);
      const images = body.messages.flatMap((m: any) =>
        Array.isArray(m.content) ? m.content.filter((p: any) => p.type === 'image_url') : [],
      );
      const answer = `${name} saw ${images.length} image(s)`;
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const words = answer.split(' ');
        let i = 0;
        // Chunks go out one by one with a pause, so relaying must stream rather than buffer.
        const tick = () => {
          if (i < words.length) {
            const chunk = {
              id: 'chatcmpl-fake',
              object: 'chat.completion.chunk',
              created: 1_700_000_000,
              model: body.model,
              choices: [{ index: 0, delta: { content: (i ? ' ' : '') + words[i] }, finish_reason: null }],
            };
            res.write(`data: ${JSON.stringify(chunk)}\n\n`);
            i++;
            setTimeout(tick, 5);
          } else {
            res.write(
              `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
            );
            res.end('data: [DONE]\n\n');
          }
        };
        tick();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-req-1' });
      res.end(JSON.stringify(completion(body.model, answer)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    models,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
