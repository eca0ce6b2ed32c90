/** The compress and decompress stages, built from the codec table in lib/core/codecs.ts. */
import { codecOf, compressionExtension } from '../../../lib/core/codecs';
import { Compression } from '../../../lib/core/model';
import { CommandSpec, findTool } from './stages';

/** The file name extension of each compression. */
export const COMPRESSION_EXT: Readonly<Record<Compression, string>> = {
  [Compression.ZSTD]: compressionExtension(Compression.ZSTD),
  [Compression.GZIP]: compressionExtension(Compression.GZIP),
  [Compression.LZ4]: compressionExtension(Compression.LZ4),
  [Compression.NONE]: compressionExtension(Compression.NONE),
};

function stage(c: Compression, args: 'compressArgs' | 'decompressArgs'): CommandSpec | undefined {
  const codec = codecOf(c);
  if (codec === undefined) return undefined;
  // The first of the codec's tools on PATH, the last one as the fallback (pigz, then gzip).
  const cmd =
    codec.tools.length === 1
      ? codec.tools[0]
      : (findTool(codec.tools.slice(0, -1)) ?? codec.tools[codec.tools.length - 1]);
  return { cmd, args: [...codec[args]], ...(cmd !== codec.label ? { label: codec.label } : {}) };
}

/** The stage that compresses stdin to stdout, or undefined for none. */
export function compressStage(c: Compression): CommandSpec | undefined {
  return stage(c, 'compressArgs');
}

/** The stage that decompresses stdin to stdout (each checks its format's checksum). */
export function decompressStage(c: Compression): CommandSpec | undefined {
  return stage(c, 'decompressArgs');
}

/** The command a person runs to decompress, for the manual restore steps. */
export function manualDecompress(c: Compression): string | undefined {
  const codec = codecOf(c);
  return codec === undefined ? undefined : `${codec.label} -d -c`;
}
