/**
 * A minimal HEIC file (HEVC-coded HEIF): the container boxes a real one has, with a 32-byte stand-in
 * for the HEVC data. libvips reads its header (format heif, compression hevc) and cannot decode it,
 * like every real HEIC here: the prebuilt libvips has no HEVC decoder. Enough to test what the
 * gateway does with a format an API reads and its codec does not.
 */
const u32 = (n: number) => Buffer.from([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const u16 = (n: number) => Buffer.from([(n >>> 8) & 255, n & 255]);
const box = (type: string, ...parts: Buffer[]) => {
  const payload = Buffer.concat(parts);
  return Buffer.concat([u32(payload.length + 8), Buffer.from(type, 'latin1'), payload]);
};
/** An ISO BMFF full box: version and 24-bit flags before the payload. */
const fullBox = (type: string, version: number, ...parts: Buffer[]) => box(type, Buffer.from([version, 0, 0, 0]), ...parts);

function layout(width: number, height: number, dataOffset: number, data: Buffer): { file: Buffer; dataAt: number } {
  // HEVC decoder configuration: Main profile, level 3, 4:2:0, 8 bits, 4-byte NAL lengths, no parameter sets.
  const hvcC = Buffer.from([1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5a, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]);
  const meta = fullBox(
    'meta',
    0,
    fullBox('hdlr', 0, u32(0), Buffer.from('pict'), Buffer.alloc(12), Buffer.from([0])),
    fullBox('pitm', 0, u16(1)),
    fullBox('iinf', 0, u16(1), fullBox('infe', 2, u16(1), u16(0), Buffer.from('hvc1'), Buffer.from([0]))),
    // one item, one extent: 4-byte offset and length, no base offset
    fullBox('iloc', 0, Buffer.from([0x44, 0x00]), u16(1), u16(1), u16(0), u16(1), u32(dataOffset), u32(data.length)),
    box(
      'iprp',
      box('ipco', box('hvcC', hvcC), fullBox('ispe', 0, u32(width), u32(height))),
      fullBox('ipma', 0, u32(1), u16(1), Buffer.from([2, 0x81, 0x02])),
    ),
  );
  const ftyp = box('ftyp', Buffer.from('heic'), u32(0), Buffer.from('mif1heic'));
  return { file: Buffer.concat([ftyp, meta, box('mdat', data)]), dataAt: ftyp.length + meta.length + 8 };
}

export function minimalHeic(width: number, height: number): Buffer {
  const data = Buffer.alloc(32, 0x26);
  // The item's offset is where mdat's payload starts, known once the boxes before it are laid out.
  return layout(width, height, layout(width, height, 0, data).dataAt, data).file;
}
