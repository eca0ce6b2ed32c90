// file:// storage written directly by the pipeline's last stage (openDirect): nothing at the
// object's name until commit, the sha256 read back from what is on disk as it grows (the file is
// opened for appending, so earlier bytes never change), discard leaves nothing.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseStorageUrl } from '../../lib/core/urls';
import { FileStorage } from '../../runner/src/storage/file';

describe('file:// storage: an object its last stage writes itself', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-direct-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const partials = (folder: string) => fs.readdirSync(folder).filter((n) => n.includes('.partial-'));

  test('a child writes through the descriptor; commit hashes the file and puts it in place', async () => {
    const storage = new FileStorage(parseStorageUrl(`file://${dir}/store`));
    const key = '20260101T000000Z-shop-full-0001/database.pgdump.zst';
    const direct = await storage.openDirect(key);
    const folder = path.join(dir, 'store', '20260101T000000Z-shop-full-0001');
    // 3 MiB of random bytes from a child process, as the last stage of a pipeline writes them.
    execFileSync('head', ['-c', String(3 << 20), '/dev/urandom'], { stdio: ['ignore', direct.fd, 'ignore'] });
    expect(direct.written()).toBe(3 << 20);
    expect(fs.existsSync(path.join(folder, 'database.pgdump.zst'))).toBe(false);
    expect(partials(folder)).toHaveLength(1);
    const stored = await direct.commit();
    const bytes = fs.readFileSync(path.join(folder, 'database.pgdump.zst'));
    expect(stored).toEqual({ size: 3 << 20, sha256: crypto.createHash('sha256').update(bytes).digest('hex') });
    expect(partials(folder)).toEqual([]);
  });

  test('hashed as it grows (a writer slower than the follower); a stage that seeks back only appends', async () => {
    const storage = new FileStorage(parseStorageUrl(`file://${dir}/growing`));
    const direct = await storage.openDirect('20260101T000000Z-shop-full-0003/database.pgdump.zst');
    // Three 2 MiB chunks 300 ms apart, then a seek to the start and one byte: O_APPEND puts it last.
    const script =
      'import os, sys, time\n' +
      'for i in range(3):\n' +
      '    os.write(1, bytes([65 + i]) * (2 << 20)); time.sleep(0.3)\n' +
      'os.lseek(1, 0, os.SEEK_SET); os.write(1, b"X")\n';
    execFileSync('python3', ['-c', script], { stdio: ['ignore', direct.fd, 'inherit'] });
    const stored = await direct.commit();
    const file = path.join(dir, 'growing', '20260101T000000Z-shop-full-0003', 'database.pgdump.zst');
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBe(3 * (2 << 20) + 1);
    expect(bytes[0]).toBe(65);
    expect(bytes[bytes.length - 1]).toBe('X'.charCodeAt(0));
    expect(stored).toEqual({ size: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') });
  });

  test('discard removes the temporary file; nothing is at the name', async () => {
    const storage = new FileStorage(parseStorageUrl(`file://${dir}/discarded`));
    const key = '20260101T000000Z-shop-full-0002/database.pgdump.zst';
    const direct = await storage.openDirect(key);
    fs.writeSync(direct.fd, Buffer.from('half a dump'));
    await direct.discard();
    await direct.discard();
    const folder = path.join(dir, 'discarded', '20260101T000000Z-shop-full-0002');
    expect(fs.readdirSync(folder).filter((n) => n !== '.dbbackup-writer')).toEqual([]);
  });
});
