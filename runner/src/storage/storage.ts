import { Readable } from 'node:stream';
import { RetentionTier } from '../../../lib/core/model';
import { StorageUrl } from '../../../lib/core/urls';

/** How to store an object. */
export interface PutOptions {
  /** The retention tier: an S3 object tag / GCS metadata that the lifecycle rules match. */
  readonly tier?: RetentionTier;
  readonly contentType?: string;
  /** Cancels the upload; what was written is removed (S3: the multipart upload is aborted). */
  readonly signal?: AbortSignal;
}

/** A stored object's key (relative to the storage URL's path) and size. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
}

/** No object at that key. */
export class NotFoundError extends Error {
  public readonly name = 'NotFoundError';
}

/**
 * A place backups are stored. Keys are relative to the storage URL's path and use `/`.
 * Every backend keeps the same promises: an upload that did not resolve leaves nothing at its
 * key; `putBytes` is atomic (readers see the old state or the whole new object).
 */
/**
 * An object the pipeline's last stage writes itself, through an open descriptor (file://): the
 * bytes never pass through this process. Nothing is at the object's name until `commit`.
 */
export interface DirectObject {
  /** The descriptor the last stage writes to (its stdout). */
  readonly fd: number;
  /** The bytes written so far. */
  written(): number;
  /** The sha256 of what was read back from the file (as it grew, then the rest), made durable, put in place. */
  commit(): Promise<{ size: number; sha256: string }>;
  /** Remove it (idempotent). */
  discard(): Promise<void>;
}

export interface Storage {
  readonly url: StorageUrl;
  /** Stream `body` (of unknown length) into `key`; resolves with the stored size once durable. */
  upload(key: string, body: Readable, options?: PutOptions): Promise<number>;
  /** Open `key` for a stage to write directly (see DirectObject); absent where bytes must be sent. */
  openDirect?(key: string): Promise<DirectObject>;
  /** Store a small object atomically (the manifest). */
  putBytes(key: string, data: Buffer, options?: PutOptions): Promise<void>;
  /** Stream an object. Throws NotFoundError. */
  read(key: string): Promise<Readable>;
  /** A whole small object. Throws NotFoundError. */
  readBytes(key: string): Promise<Buffer>;
  /** The object's size, or undefined when there is none. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** The names of the folders directly under `prefix` (`''` for the top). */
  listFolders(prefix: string): Promise<string[]>;
  /** Every object under `prefix`, recursively. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Delete every object under a folder (used only by `prune` on file:// storage). */
  removeFolder(prefix: string): Promise<void>;
  /**
   * Remove what a failed backup wrote under its folder, where this backend lets the runner
   * delete (file://). On object storage the runner has no delete right: the objects stay
   * without a manifest (never taken for a backup) until the lifecycle rules expire them.
   */
  discardIncomplete(prefix: string): Promise<void>;
  /**
   * The tier an object carries now (S3: its tag), which may be longer than its backup's manifest
   * says when a dependant raised it. Absent where tiers cannot change after writing.
   */
  currentTier?(key: string): Promise<RetentionTier | undefined>;
  /**
   * Re-tag every object of a backup folder with a longer-lived tier, keeping its other tags
   * (S3 PutObjectTagging: not a delete right, allowed under Object Lock). Absent where a tier
   * is part of the object's name (GCS folders) or means nothing (file://).
   */
  raiseTier?(folder: string, tier: RetentionTier): Promise<void>;
}

/** Join key parts with single slashes. */
export function joinKey(...parts: string[]): string {
  return parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/{2,}/g, '/');
}
