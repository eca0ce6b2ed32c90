/**
 * The codecs the runner compresses with, once: each one's name, file-name extension, the tool
 * that runs it and the arguments that compress and decompress. The pipeline builds its stages
 * from it, the log archive and the backup's artifact names take the extension from it, and the
 * manual restore lines print its decompress command.
 */
import { Compression } from './model';

export interface Codec {
  readonly name: Compression;
  /** The file-name extension, with its dot (`.zst`); empty for none. */
  readonly extension: string;
  /** The programs that run it, the first found on PATH wins (pigz writes gzip on all cores). */
  readonly tools: readonly string[];
  /** The name of the tool in messages and in the manual restore lines. */
  readonly label: string;
  readonly compressArgs: readonly string[];
  /** Each decompressor checks its format's checksum. */
  readonly decompressArgs: readonly string[];
}

/** Every codec but `none`. */
export const CODECS: Readonly<Record<Exclude<Compression, Compression.NONE>, Codec>> = {
  [Compression.ZSTD]: {
    name: Compression.ZSTD,
    extension: '.zst',
    tools: ['zstd'],
    label: 'zstd',
    compressArgs: ['-q', '-c', '-3', '-T0'],
    decompressArgs: ['-q', '-d', '-c'],
  },
  [Compression.GZIP]: {
    name: Compression.GZIP,
    extension: '.gz',
    tools: ['pigz', 'gzip'],
    label: 'gzip',
    compressArgs: ['-c', '-6'],
    decompressArgs: ['-d', '-c'],
  },
  [Compression.LZ4]: {
    name: Compression.LZ4,
    extension: '.lz4',
    tools: ['lz4'],
    label: 'lz4',
    compressArgs: ['-q', '-z', '-c'],
    decompressArgs: ['-q', '-d', '-c'],
  },
};

/** The compression when none is chosen. */
export const DEFAULT_COMPRESSION = Compression.ZSTD;

/** The codec of a compression, or undefined for none. */
export function codecOf(c: Compression): Codec | undefined {
  return c === Compression.NONE ? undefined : CODECS[c];
}

/** The file-name extension of a compression (empty for none). */
export function compressionExtension(c: Compression): string {
  return codecOf(c)?.extension ?? '';
}

/** The compression a file-name extension stands for, or undefined. */
export function compressionOfExtension(ext: string): Compression | undefined {
  return Object.values(CODECS).find((c) => c.extension === ext)?.name;
}

/** The extensions as a regular-expression alternation, dots escaped: `\.zst|\.gz|\.lz4`. */
export function extensionPattern(): string {
  return Object.values(CODECS)
    .map((c) => c.extension.replace('.', '\\.'))
    .join('|');
}
