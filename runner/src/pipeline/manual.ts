import { Manifest } from '../../../lib/core/manifest';
import { ENCRYPTION_EXT, EncryptionScheme, StorageKind, StorageUrl } from '../../../lib/core/urls';
import { joinKey } from '../storage/storage';
import { CODECS } from '../../../lib/core/codecs';
import { oneLine, shellQuote } from '../../../lib/core/shell';
import { manualDecompress } from './compress';
import { manualGpgDecrypt } from './gpg';
import { manualOpensslDecrypt } from './openssl';

// What the stored name adds to the artifact's name: the codec's extension, the encryption's.
const STORED_SUFFIXES = [...Object.values(CODECS).map((c) => c.extension), ...Object.values(ENCRYPTION_EXT)]
  .filter((e) => e !== '')
  .map((e) => e.slice(1));
const STORED_EXT = new RegExp(`\\.(${[...new Set(STORED_SUFFIXES)].join('|')})+$`, 'g');

const quote = shellQuote;

/**
 * The shell command that writes a stored object to stdout. On gs:// a backup's objects are in
 * its tier folder (`<prefix>/<tier>/<id>/…`, see storage/gcs.ts), so `tier` is part of the name.
 */
function fetchCommand(url: StorageUrl, key: string, tier?: string): string {
  switch (url.kind) {
    case StorageKind.FILE:
      return `cat ${quote(url.path + '/' + key)}`;
    case StorageKind.S3:
      return `aws s3 cp ${quote(`s3://${url.bucket}/${joinKey(url.path, key)}`)} -`;
    case StorageKind.GCS:
      return `gcloud storage cat ${quote(`gs://${url.bucket}/${joinKey(url.path, tier ?? '', key)}`)}`;
    case StorageKind.AZURE:
      return (
        `az storage blob download --account-name ${quote(url.account ?? '')} --container-name ${quote(url.bucket)}` +
        ` --name ${quote(joinKey(url.path, key))} --file /dev/stdout --no-progress --output none`
      );
  }
}

/** Artifacts a person restoring by hand does not need, and why (said in a comment line instead). */
const NOT_NEEDED: Readonly<Record<string, string>> = {
  'pg_dump-directory-toc': 'a copy of database.pgdir/toc.dat, which the archive holds too',
};

/** The consumer a person runs for each artifact role. */
const CONSUMERS: Readonly<Record<string, string>> = {
  'pg_dump-custom': 'pg_restore --single-transaction --exit-on-error -d TARGET_DATABASE',
  // A parallel dump: the archive holds the directory database.pgdir/ that pg_restore -j reads.
  'pg_dump-directory-tar': 'tar -x -f - && pg_restore --jobs=4 --exit-on-error -d TARGET_DATABASE database.pgdir',
  sql: 'psql -X -d TARGET_DATABASE -f -',
  'mysql-sql': 'mariadb --binary-mode TARGET_DATABASE',
  // A parallel MySQL/MariaDB dump: the archive holds the directory database.mydumper/ that myloader reads.
  // myloader 0.10 on MariaDB 10.6+ can deadlock when its threads start on the same empty table
  // (parallel-restore.ts): the comment says what to do then.
  'mydumper-directory-tar':
    'tar -x -f - && myloader --threads=4 --enable-binlog --directory=database.mydumper --database=TARGET_DATABASE' +
    "   # on 'Deadlock found': drop TARGET_DATABASE, create it empty, run this again with --threads=1",
  // Its routines, events and triggers: loaded after myloader.
  'mysql-objects-sql': 'mariadb --binary-mode TARGET_DATABASE   # after myloader',
  'mongodump-archive': 'mongorestore --archive --oplogReplay --uri TARGET_URI',
  // Physical MySQL/MariaDB: unpack each backup of the chain into its own directory, then prepare
  // the full and apply each incremental in order (docs/mysql.md#physical-backups-mariadb-backup).
  'mariadb-backup-mbstream':
    'mbstream -x -C DIR   # then: mariadb-backup --prepare --target-dir=FULL_DIR [--incremental-dir=DIR]',
  'xtrabackup-xbstream':
    'xbstream -x -C DIR   # then: xtrabackup --prepare --apply-log-only --target-dir=FULL_DIR [--incremental-dir=DIR]',
};

/**
 * How a person restores this backup with standard tools only (aws / gcloud, jq, base64,
 * age, zstd / gzip / lz4, and the engine's own client), when this program is not at hand.
 * TARGET_DATABASE / TARGET_URI stand for where to restore to; identity.txt is the age identity,
 * KEYFILE the openssl key file; gpg decrypts with the key ring in GNUPGHOME.
 */
export function manualRestoreSteps(url: StorageUrl, m: Omit<Manifest, 'manualRestore'>): string[] {
  const lines: string[] = [];
  const enc = m.pipeline.encryption;
  if (enc.scheme === EncryptionScheme.KMS) {
    const ctx = Object.entries(enc.encryptionContext ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    lines.push(
      `${fetchCommand(url, `${m.id}/manifest.json`, m.tier)} | jq -r .pipeline.encryption.wrappedKey | base64 -d > ` +
        'wrapped-key.bin',
    );
    lines.push(
      `aws kms decrypt --key-id ${quote(enc.keyId ?? '')} --ciphertext-blob fileb://wrapped-key.bin ` +
        `--encryption-context ${quote(ctx)} --query Plaintext --output text | base64 -d > identity.txt`,
    );
  }
  // Roles first: the database's objects refer to them.
  const ordered = [...m.artifacts].sort(
    (a, b) => Number(b.role === 'globals' || b.role === 'grants') - Number(a.role === 'globals' || a.role === 'grants'),
  );
  for (const a of ordered) {
    const unneeded = NOT_NEEDED[a.format];
    if (unneeded !== undefined) {
      lines.push(`# ${oneLine(a.role)}: not needed by hand (${unneeded})`);
      continue;
    }
    const stages = [fetchCommand(url, `${m.id}/${a.name}`, m.tier)];
    if (enc.scheme === EncryptionScheme.GPG) stages.push(manualGpgDecrypt());
    else if (enc.scheme === EncryptionScheme.OPENSSL) stages.push(manualOpensslDecrypt(enc.iterations));
    else if (enc.scheme !== EncryptionScheme.NONE) stages.push('age -d -i identity.txt');
    const d = manualDecompress(m.pipeline.compression);
    if (d !== undefined) stages.push(d);
    stages.push(CONSUMERS[a.format] ?? `cat > ${a.name.replace(STORED_EXT, '')}`);
    lines.push(`# ${oneLine(a.role)}:`);
    lines.push(stages.join(' | '));
  }
  return lines;
}
