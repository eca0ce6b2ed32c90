// The full-object checksum rule, on the response shapes S3 documents for HeadObject with
// ChecksumMode ENABLED (moto 5.2 does not produce all of them; see verify.test.ts for moto).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from '@jest/globals';
import { decideChecksumSkip, hexToBase64 } from '../../lambda/verify/checksum';

const bytes = Buffer.from('the stored bytes of an artifact');
const hex = createHash('sha256').update(bytes).digest('hex');
const b64 = createHash('sha256').update(bytes).digest('base64');

describe('decideChecksumSkip', () => {
  test('hexToBase64 gives the form S3 uses', () => {
    assert.equal(hexToBase64(hex), b64);
  });

  test('single PutObject with x-amz-checksum-sha256: FULL_OBJECT and equal → skip', () => {
    const d = decideChecksumSkip({ ChecksumSHA256: b64, ChecksumType: 'FULL_OBJECT' }, hex);
    assert.equal(d.skipRead, true);
  });

  test('FULL_OBJECT but a different value → read (the failure comes from our own hash)', () => {
    const other = createHash('sha256').update('x').digest('base64');
    const d = decideChecksumSkip({ ChecksumSHA256: other, ChecksumType: 'FULL_OBJECT' }, hex);
    assert.equal(d.skipRead, false);
    assert.match(d.why, /differs/);
  });

  test('multipart SHA-256 is COMPOSITE (`<base64>-<parts>`) → read', () => {
    assert.equal(decideChecksumSkip({ ChecksumSHA256: `${b64}-3`, ChecksumType: 'COMPOSITE' }, hex).skipRead, false);
    // Even if a composite value happened to equal the object's hash, its type rules it out.
    assert.equal(decideChecksumSkip({ ChecksumSHA256: b64, ChecksumType: 'COMPOSITE' }, hex).skipRead, false);
  });

  test('a part count in the value is composite whatever the type says', () => {
    assert.equal(decideChecksumSkip({ ChecksumSHA256: `${b64}-1`, ChecksumType: 'FULL_OBJECT' }, hex).skipRead, false);
  });

  test('a SHA-256 without ChecksumType (moto 5.2 multipart HeadObject, older objects) → read', () => {
    const d = decideChecksumSkip({ ChecksumSHA256: b64 }, hex);
    assert.equal(d.skipRead, false);
    assert.match(d.why, /does not say it is FULL_OBJECT/);
  });

  test('full-object CRC checksums (the only full-object kind for multipart on S3) → read', () => {
    const crcOnly = { ChecksumCRC64NVME: 'AAAAAAAAAAA=', ChecksumType: 'FULL_OBJECT' } as { ChecksumType: string };
    assert.equal(decideChecksumSkip(crcOnly, hex).skipRead, false);
  });

  test('no checksum at all → read', () => {
    assert.equal(decideChecksumSkip({}, hex).skipRead, false);
    assert.equal(decideChecksumSkip({ ChecksumSHA256: '' , ChecksumType: 'FULL_OBJECT' }, hex).skipRead, false);
  });
});
