/**
 * semantic-avif: AVIF made around an editor package's networks. The pre-editor (when the package has
 * one) edits the image for the quality it will be coded at; with the restoration flag the package's
 * restoration network runs on the decoded AVIF, so the package must then be loaded to decode. The
 * model id field names the package; the latent section is the AVIF file.
 */
import { CodecKind, Flags, QUALITY_ONE } from '../container.js';
import { runEditorGraph, runRestoration } from '../editor-package.js';
import { CodecError, stopPoint } from '../errors.js';
import { AVIF_SCALE, avifFile } from './avif.js';
import { decodeFile, wrapFile } from './file-payload.js';
import type { CodecKindModule } from './kind.js';
import { KIND_NAMES } from './names.js';

export const semanticAvif: CodecKindModule = {
  name: KIND_NAMES.semanticAvif,
  code: CodecKind.SemanticAvif,
  harnessName: KIND_NAMES.semanticAvif,
  payload: 'avif',
  package: 'editor',
  scale: () => AVIF_SCALE,

  encoder(ctx, img, { model, flags, stop }) {
    const pkg = ctx.packages.editor(model);
    const header = {
      code: CodecKind.SemanticAvif,
      flags: flags | (pkg.restoration ? Flags.Restoration : 0),
      modelIdPrefix: pkg.manifest.id.slice(0, 16),
    };
    return {
      scale: AVIF_SCALE,
      // The edit is made for the quality it will be coded at, so each probe of a byte budget edits anew.
      at: async (qualityFixed) => {
        const quality = qualityFixed / QUALITY_ONE;
        const edited = pkg.preeditor ? await runEditorGraph(pkg.preeditor, img, quality) : img;
        stopPoint(stop);
        return wrapFile(img, await avifFile(edited, quality), { ...header, qualityFixed });
      },
      model: { name: pkg.manifest.name, id: pkg.manifest.id },
      provider: pkg.provider,
    };
  },

  async decode(ctx, c, stop) {
    const restore = (c.flags & Flags.Restoration) !== 0;
    const pkg = ctx.packages.editorByPrefix(c.modelIdPrefix);
    if (restore && !pkg)
      throw new CodecError('unknown_model', `the bitstream was made with editor package ${c.modelIdPrefix}…, which is not loaded`, {
        modelIdPrefix: c.modelIdPrefix,
      });
    if (restore && !pkg!.restoration)
      throw new CodecError('bad_model_package', `editor package ${pkg!.manifest.name} has no restoration network`);
    const decoded = await decodeFile(c, 'avif', ctx.maxDecodePixels);
    const img = restore ? await runRestoration(pkg!.restoration!, decoded, decoded.quality, stop) : decoded;
    const model = pkg ? { name: pkg.manifest.name, id: pkg.manifest.id } : { name: KIND_NAMES.semanticAvif, id: '' };
    return { data: img.data, width: img.width, height: img.height, quality: decoded.quality, model };
  },
};
