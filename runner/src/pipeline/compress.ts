import { Compression } from '../../../lib/core/model';
import { CommandSpec, findTool } from './stages';

/** The file name extension of each compression. */
export const COMPRESSION_EXT: Readonly<Record<Compression, string>> = {
  [Compression.ZSTD]: '.zst',
  [Compression.GZIP]: '.gz',
  [Compression.LZ4]: '.lz4',
  [Compression.NONE]: '',
};

function gzipTool(): string {
  // pigz writes standard gzip on all cores; gzip is the fallback.
  return findTool(['pigz']) ?? 'gzip';
}

/** The stage that compresses stdin to stdout, or undefined for none. */
export function compressStage(c: Compression): CommandSpec | undefined {
  switch (c) {
    case Compression.ZSTD:
      return { cmd: 'zstd', args: ['-q', '-c', '-3', '-T0'] };
    case Compression.GZIP:
      return { cmd: gzipTool(), args: ['-c', '-6'], label: 'gzip' };
    case Compression.LZ4:
      return { cmd: 'lz4', args: ['-q', '-z', '-c'] };
    case Compression.NONE:
      return undefined;
  }
}

/** The stage that decompresses stdin to stdout (each checks its format's checksum). */
export function decompressStage(c: Compression): CommandSpec | undefined {
  switch (c) {
    case Compression.ZSTD:
      return { cmd: 'zstd', args: ['-q', '-d', '-c'] };
    case Compression.GZIP:
      return { cmd: gzipTool(), args: ['-d', '-c'], label: 'gzip' };
    case Compression.LZ4:
      return { cmd: 'lz4', args: ['-q', '-d', '-c'] };
    case Compression.NONE:
      return undefined;
  }
}

/** The command a person runs to decompress, for the manual restore steps. */
export function manualDecompress(c: Compression): string | undefined {
  switch (c) {
    case Compression.ZSTD:
      return 'zstd -d -c';
    case Compression.GZIP:
      return 'gzip -d -c';
    case Compression.LZ4:
      return 'lz4 -d -c';
    case Compression.NONE:
      return undefined;
  }
}
