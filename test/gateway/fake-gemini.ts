/**
 * A fake Gemini API server on loopback (a real HTTP server) that records the exact bytes of every
 * request. It answers models/{model}:generateContent as JSON, :streamGenerateContent as SSE
 * (`alt=sse`) or as one JSON array written element by element, :countTokens from the images it
 * actually received, and fails on demand (a model named "fail-<status>") in Google's error shape.
 */
import sharp from 'sharp';
import { geminiTokens } from '../../src/policy/tokens.js';
import { startRecordingServer, type FakeServer } from './recording-server.js';

/** Every inline image part of a request, in either spelling. */
export function geminiImages(body: any): any[] {
  const contents = body.contents ?? body.generateContentRequest?.contents ?? [];
  return contents.flatMap((c: any) => (c.parts ?? []).flatMap((p: any) => [p.inline_data ?? p.inlineData].filter(Boolean)));
}

function chunk(model: string, text: string, last: boolean, promptTokens: number) {
  return {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }],
    usageMetadata: { promptTokenCount: promptTokens, candidatesTokenCount: 4, totalTokenCount: promptTokens + 4 },
    modelVersion: model,
    responseId: 'fake-response',
  };
}

async function countTokens(body: any): Promise<number> {
  let n = 10;
  for (const image of geminiImages(body)) {
    const meta = await sharp(Buffer.from(image.data, 'base64'))
      .metadata()
      .catch(() => null);
    n += meta ? geminiTokens(meta.width!, meta.height!) : 258;
  }
  return n;
}

export async function startFakeGemini(): Promise<FakeServer> {
  return startRecordingServer(async (req, res) => {
    const body = req.body;
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'x-upstream-marker': 'gemini' });
      res.end(JSON.stringify(value));
    };
    const m = /^\/v1(?:beta)?\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) return json(404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
    const [, model, method] = m as unknown as [string, string, string];
    const failure = /^fail-(\d{3})$/.exec(model);
    if (failure) {
      const status = Number(failure[1]);
      return json(status, {
        error: { code: status, message: `upstream says ${status}`, status: status === 429 ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE' },
      });
    }
    const tokens = await countTokens(body);
    if (method === 'countTokens') return json(200, { totalTokens: tokens });
    const answer = `fake saw ${geminiImages(body).length} image(s)`;
    if (method === 'generateContent') return json(200, chunk(model, answer, true, tokens));
    const words = answer.split(' ');
    const sse = url.searchParams.get('alt') === 'sse';
    res.writeHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/json; charset=UTF-8' });
    if (!sse) res.write('[');
    let i = 0;
    // Pieces go out one by one with a pause, so relaying must stream rather than buffer.
    const tick = () => {
      const piece = chunk(model, (i ? ' ' : '') + words[i], i === words.length - 1, tokens);
      res.write(sse ? `data: ${JSON.stringify(piece)}\r\n\r\n` : `${i ? ',\r\n' : ''}${JSON.stringify(piece)}`);
      i++;
      if (i < words.length) setTimeout(tick, 5);
      else res.end(sse ? '' : ']');
    };
    tick();
  });
}
