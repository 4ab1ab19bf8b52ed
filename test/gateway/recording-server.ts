/** A real HTTP server on loopback that records the exact bytes of every request before a fake provider answers it. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RawRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** the body exactly as it arrived */
  raw: Buffer;
  body: any;
}

export interface FakeServer {
  /** base URL as the provider's SDK takes it */
  url: string;
  received: RawRequest[];
  close(): Promise<void>;
}

export async function startRecordingServer(
  answer: (request: RawRequest, res: ServerResponse) => void | Promise<void>,
): Promise<FakeServer> {
  const received: RawRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw,
        body: raw.length ? JSON.parse(raw.toString('utf8')) : undefined,
      };
      received.push(request);
      void answer(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
