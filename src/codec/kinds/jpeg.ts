/** jpeg: JPEG from sharp, chroma 4:2:0. */
import { CodecKind } from '../container.js';
import type { RgbImage } from '../image-io.js';
import { bytesOf, fileScale, plainFileKind, sharpRgb } from './file-payload.js';
import { KIND_NAMES } from './names.js';

const jpegFile = async (img: RgbImage, quality: number) =>
  bytesOf(await sharpRgb(img).jpeg({ quality, chromaSubsampling: '4:2:0' }).toBuffer());

/** The harness's settings; bytes grow about 3 % a quality point on Kodak. */
export const jpeg = plainFileKind(KIND_NAMES.jpeg, CodecKind.Jpeg, 'jpeg', fileScale([5, 10, 20, 30, 45, 60, 75, 90], 0.03), jpegFile);
