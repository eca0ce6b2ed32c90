/**
 * When may the verifier trust a checksum that S3 keeps instead of reading the bytes again?
 *
 * Only when S3 holds a FULL-OBJECT SHA-256 of the object: a value S3 checked against the bytes
 * it received when the object was written (S3 rejects an upload whose bytes do not match the
 * `x-amz-checksum-sha256` it was given, with `BadDigest`), covering the whole object, and
 * using the same algorithm as the manifest. Then `sha256(stored bytes)` is known without a read,
 * and equality with the manifest's value is as good as hashing the stream.
 *
 * What this accepts and refuses, by the shapes S3 returns from
 * `HeadObject` with `ChecksumMode: ENABLED`:
 *
 * - Single-request `PutObject` sent with `x-amz-checksum-sha256`: `ChecksumSHA256` is the base64
 *   of the object's SHA-256 and `ChecksumType` is `FULL_OBJECT`. Accepted.
 * - Multipart upload with `ChecksumAlgorithm: SHA256`: S3 supports only the `COMPOSITE` type for
 *   SHA-1/SHA-256; the value is a checksum of the parts' checksums, shown as `<base64>-<parts>`
 *   with `ChecksumType: COMPOSITE`. It says nothing directly about sha256(object). Refused: read.
 * - Multipart upload with a full-object CRC (CRC32, CRC32C, CRC64NVME; `FULL_OBJECT`): a whole-
 *   object value, but not SHA-256, so it cannot be compared with the manifest. Refused: read.
 * - No checksum, or a `ChecksumSHA256` without `ChecksumType` (older objects; moto 5.2 answers
 *   this way for every multipart upload): we cannot tell full-object from composite. Refused.
 *
 * The runner streams its artifacts with multipart uploads, so on real S3 the bytes of those are
 * always read; the skip applies to artifacts stored with one `PutObject` carrying their SHA-256.
 */

/** The checksum fields of a `HeadObject` (ChecksumMode ENABLED) or `GetObject` response. */
export interface StoredChecksum {
  readonly ChecksumSHA256?: string;
  readonly ChecksumType?: string;
}

/** Whether the stored checksum can stand in for reading the bytes, and why. */
export interface ChecksumDecision {
  /** True: the object's bytes hash to the manifest's sha256, on S3's word. */
  readonly skipRead: boolean;
  readonly why: string;
}

/** Base64 of the bytes a hex string spells (the form S3 uses for checksums). */
export function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** Decide whether `stored` proves that the object's sha256 is `manifestSha256Hex`. */
export function decideChecksumSkip(stored: StoredChecksum, manifestSha256Hex: string): ChecksumDecision {
  const value = stored.ChecksumSHA256;
  if (value === undefined || value === '') {
    return { skipRead: false, why: 'no SHA-256 checksum stored with the object' };
  }
  if (stored.ChecksumType !== 'FULL_OBJECT') {
    return {
      skipRead: false,
      why: stored.ChecksumType
        ? `the stored SHA-256 is ${stored.ChecksumType}, not FULL_OBJECT`
        : 'the stored SHA-256 does not say it is FULL_OBJECT',
    };
  }
  if (value.includes('-')) {
    // `<base64>-<parts>` is the composite form; a full-object value never carries a part count.
    return { skipRead: false, why: 'the stored SHA-256 has a part count, so it is composite' };
  }
  if (value !== hexToBase64(manifestSha256Hex)) {
    // S3's value disagrees with the manifest. Read anyway, so the failure is reported from a
    // hash this function computed itself.
    return { skipRead: false, why: "the stored full-object SHA-256 differs from the manifest's" };
  }
  return { skipRead: true, why: 'S3 holds a verified full-object SHA-256 equal to the manifest' };
}
