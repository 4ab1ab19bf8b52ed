import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseContainer, serialiseContainer, CodecKind } from '../../src/codec/container.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { CodecError, type CodecErrorCode } from '../../src/codec/errors.js';

const header = {
  version: 1,
  codec: CodecKind.Learned,
  flags: 0,
  modelIdPrefix: '0123456789abcdef',
  qualityFixed: 3 * 256 + 64,
  width: 300,
  height: 17,
  hyper: Uint8Array.of(1, 2, 3, 4, 5),
  latent: Uint8Array.of(9, 8, 7, 6, 5, 4),
};

function expectCode(buf: Uint8Array, code: CodecErrorCode): void {
  assert.throws(
    () => parseContainer(buf),
    (e: unknown) => e instanceof CodecError && e.code === code,
    `expected ${code}`,
  );
}

/** Rewrite the trailing checksum so a deliberately invalid field gets past the CRC check. */
function fixCrc(buf: Uint8Array): Uint8Array {
  const out = Uint8Array.from(buf);
  new DataView(out.buffer).setUint32(out.length - 4, crc32c(out, 0, out.length - 4), false);
  return out;
}

describe('CRC-32C', () => {
  it('matches the standard check value', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  });
});

describe('VLMP container v1', () => {
  it('round-trips every field', () => {
    const buf = serialiseContainer(header);
    assert.equal(buf.length, 4 + 3 + 8 + 2 + 2 + 1 + 1 + 1 + 5 + 6 + 4);
    const c = parseContainer(buf);
    assert.equal(c.modelIdPrefix, header.modelIdPrefix);
    assert.equal(c.qualityFixed, header.qualityFixed);
    assert.equal(c.width, 300);
    assert.equal(c.height, 17);
    assert.deepEqual([...c.hyper], [...header.hyper]);
    assert.deepEqual([...c.latent], [...header.latent]);
    assert.equal(c.byteLength, buf.length);
  });

  it('names each kind of damage', () => {
    const buf = serialiseContainer(header);
    expectCode(new TextEncoder().encode('\x89PNG\r\n'), 'bad_magic');
    expectCode(Uint8Array.of(0x56, 0x4c), 'truncated');
    for (let n = 4; n < buf.length; n++) expectCode(buf.subarray(0, n), 'truncated');
    const v2 = Uint8Array.from(buf);
    v2[4] = 2;
    expectCode(v2, 'unsupported_version');
    const flipped = Uint8Array.from(buf);
    flipped[buf.length - 6]! ^= 0x10;
    expectCode(flipped, 'corrupt_payload');
    expectCode(new Uint8Array([...buf, 0]), 'corrupt_payload');
    const codec = Uint8Array.from(buf);
    codec[5] = 9;
    expectCode(fixCrc(codec), 'unsupported_codec');
    const flags = Uint8Array.from(buf);
    flags[6] = 0x80;
    expectCode(fixCrc(flags), 'unsupported_feature');
    expectCode(serialiseContainer({ ...header, width: 0 }), 'bad_header');
  });

  it('rejects an over-long LEB128 field', () => {
    const buf = serialiseContainer(header);
    const head = buf.subarray(0, 17);
    const bad = new Uint8Array([...head, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0, 0]);
    expectCode(bad, 'bad_header');
  });
});
