/**
 * A fake Anthropic Messages server on loopback (a real HTTP server) that records the exact bytes of
 * every request. It answers /v1/messages as JSON or as Anthropic's SSE event stream (message_start,
 * content blocks, ping, message_delta, message_stop), counts tokens on /v1/messages/count_tokens from
 * the images it actually received, fails on demand (a model named "fail-<status>"), and breaks a
 * stream with an `error` event for the model "overloaded-mid-stream".
 */
import sharp from 'sharp';
import { anthropicTokens } from '../../src/policy/tokens.js';
import { startRecordingServer, type FakeServer } from './recording-server.js';

/** Every image block of a request, tool results' content included. */
export function anthropicImages(body: any): any[] {
  const blocks = (body.messages ?? []).flatMap((m: any) => (Array.isArray(m.content) ? m.content : []));
  return blocks.flatMap((b: any) =>
    b.type === 'image' ? [b] : b.type === 'tool_result' && Array.isArray(b.content) ? b.content.filter((c: any) => c.type === 'image') : [],
  );
}

function message(model: string, text: string, inputTokens: number) {
  return {
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: inputTokens, output_tokens: 4 },
  };
}

/** 10 tokens of words, plus each image at Anthropic's rule for the size received. */
async function countTokens(body: any): Promise<number> {
  let n = 10;
  for (const image of anthropicImages(body)) {
    if (image.source?.type !== 'base64') continue;
    const meta = await sharp(Buffer.from(image.source.data, 'base64')).metadata();
    n += anthropicTokens(meta.width!, meta.height!);
  }
  return n;
}

export async function startFakeAnthropic(): Promise<FakeServer> {
  return startRecordingServer(async (req, res) => {
    const body = req.body;
    const path = (req.url ?? '').split('?')[0];
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake_1', ...headers });
      res.end(JSON.stringify(value));
    };
    if (req.method !== 'POST' || (path !== '/v1/messages' && path !== '/v1/messages/count_tokens'))
      return json(404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
    const failure = /^fail-(\d{3})$/.exec(body.model);
    if (failure)
      return json(
        Number(failure[1]),
        { type: 'error', error: { type: 'rate_limit_error', message: `upstream says ${failure[1]}` } },
        {
          'x-upstream-marker': 'yes',
        },
      );
    const tokens = await countTokens(body);
    if (path === '/v1/messages/count_tokens') return json(200, { input_tokens: tokens });
    const answer = `fake saw ${anthropicImages(body).length} image(s)`;
    if (!body.stream) return json(200, message(body.model, answer, tokens));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': 'req_fake_2' });
    const send = (event: Record<string, unknown>) => res.write(`event: ${event['type']}\ndata: ${JSON.stringify(event)}\n\n`);
    send({ type: 'message_start', message: { ...message(body.model, '', tokens), content: [], stop_reason: null } });
    if (body.model === 'overloaded-mid-stream') {
      send({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      return void res.end();
    }
    send({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    send({ type: 'ping' });
    const words = answer.split(' ');
    let i = 0;
    // Events go out one by one with a pause, so relaying must stream rather than buffer.
    const tick = () => {
      if (i < words.length) {
        send({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: (i ? ' ' : '') + words[i] } });
        i++;
        setTimeout(tick, 5);
      } else {
        send({ type: 'content_block_stop', index: 0 });
        send({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } });
        send({ type: 'message_stop' });
        res.end();
      }
    };
    tick();
  });
}
