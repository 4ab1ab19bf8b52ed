/**
 * Load shedding: beyond VLMPRESS_MAX_PENDING_JOBS a gateway answers 503 overloaded with Retry-After
 * at once, the admitted requests finish normally, nothing stored is damaged, and readiness stays up
 * while the codec is busy. Both job modes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { closeCodecs, readShared } from '../helpers.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

for (const mode of MODES)
  describe(`overload (${mode} mode)`, () => {
    let gw: TestGateway;
    let base: Buffer;
    before(async () => {
      gw = await startGateway(mode, { VLMPRESS_MAX_PENDING_JOBS: '2', VLMPRESS_POLICY_FILE: 'none' });
      base = await sharp(readShared('data', 'kodak', 'kodim21.png'))
        .extract({ left: 0, top: 0, width: 384, height: 256 })
        .raw()
        .toBuffer();
    });
    after(() => gw.close());

    /** Distinct images (one pixel differs), so no request is answered from the store. */
    const variant = async (i: number) => {
      const px = Buffer.from(base);
      px[i * 3] = (px[i * 3]! + 1 + i) & 255;
      return (
        await sharp(px, { raw: { width: 384, height: 256, channels: 3 } })
          .png()
          .toBuffer()
      ).toString('base64');
    };
    const compress = (image: string) =>
      fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image, quality: 5 }),
      });

    it('sheds what exceeds the pending-job limit with 503 overloaded and serves the rest', async () => {
      const images = await Promise.all(Array.from({ length: 10 }, (_, i) => variant(i)));
      const ready = fetch(`${gw.base}/readyz`);
      const responses = await Promise.all(images.map(compress));
      const readyz = await ready;
      const bodies = await Promise.all(responses.map((r) => r.json() as Promise<any>));
      const ok = responses.filter((r) => r.status === 200).length;
      const shed = responses.filter((r) => r.status === 503);
      assert.ok(ok >= 2, `at least the admitted requests succeed (${ok})`);
      assert.ok(shed.length >= 1, 'ten simultaneous encodes against a limit of two shed some');
      assert.equal(ok + shed.length, 10, `only 200 or 503: ${responses.map((r) => r.status)}`);
      for (const r of shed) assert.equal(r.headers.get('retry-after'), '1');
      for (const [i, b] of bodies.entries()) if (responses[i]!.status === 503) assert.equal(b.error.code, 'overloaded');
      assert.equal(readyz.status, 200, 'readiness does not wait behind codec work');

      // Admitted results are intact, and a shed image succeeds once the load is gone.
      for (const [i, b] of bodies.entries()) {
        if (responses[i]!.status !== 200) continue;
        const stored = await fetch(`${gw.base}/bitstreams/${b.id}`);
        assert.equal(stored.status, 200);
        assert.equal((await stored.arrayBuffer()).byteLength, b.bytes);
      }
      const retry = await compress(images[responses.findIndex((r) => r.status === 503)]!);
      assert.equal(retry.status, 200);
      const metrics = await (await fetch(`${gw.base}/metrics`)).text();
      assert.match(metrics, new RegExp(`vlmpress_errors_total\\{code="overloaded"\\} ${shed.length}`));
    });
  });
