import * as fs from 'node:fs';
import * as path from 'node:path';
import { bech32Decode } from './bech32';
import { ConfigError } from './errors';
import { DEFAULT_PORTS, Engine } from './model';

/** A parsed database URL. It never carries a password: those come from the environment. */
export interface SourceUrl {
  readonly engine: Engine;
  readonly user?: string;
  /** Host name or address; absent when `socket` is given. */
  readonly host?: string;
  readonly port: number;
  /** A Unix socket: a directory for PostgreSQL, a socket file for MySQL/MariaDB. */
  readonly socket?: string;
  readonly database: string;
  /** Extra query parameters, passed to the engine where it understands them (e.g. `sslmode`). */
  readonly params: Readonly<Record<string, string>>;
  /** The URL as given, safe to log (it holds no password). */
  readonly display: string;
}

const SCHEMES: Readonly<Record<string, Engine>> = {
  'postgres:': Engine.POSTGRES,
  'postgresql:': Engine.POSTGRES,
  'mysql:': Engine.MYSQL,
  'mariadb:': Engine.MYSQL,
  'mongodb:': Engine.MONGODB,
  'mongodb+srv:': Engine.MONGODB,
};

/**
 * Parse a database URL such as `postgres://backup@db.internal:5432/app`.
 *
 * A socket is given as `?host=/run/postgresql` (PostgreSQL) or `?socket=/run/mysqld/mysqld.sock`
 * (MySQL/MariaDB). A password in the URL is refused: it would show in argv and logs.
 *
 * @param what the name of the option or prop, used in error messages (`--source`, `--target`)
 */
export function parseSourceUrl(raw: string, what = '--source', engine?: Engine): SourceUrl {
  const passwordVar = what === '--target' ? 'DBBACKUP_TARGET_PASSWORD' : 'DBBACKUP_SOURCE_PASSWORD';
  const secret = secretIn(raw);
  if (secret !== undefined) {
    throw new ConfigError(
      `${what} '${redact(raw)}' contains a password. Remove it from the URL and give it in ${passwordVar} ` +
        `(or the engine's own variable, PGPASSWORD / MYSQL_PWD), so it never appears in argv or logs (found: ` +
        `${secret}).`,
    );
  }
  checkEscapes(raw, what);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `${what} '${redact(raw)}' is not a URL. Use e.g. postgres://user@host:5432/dbname, ` +
        'mysql://user@host:3306/dbname or mongodb://user@host:27017/dbname.',
    );
  }
  const urlEngine = SCHEMES[url.protocol];
  if (urlEngine === undefined) {
    throw new ConfigError(
      `${what} '${redact(raw)}' has the scheme '${url.protocol.replace(/:$/, '')}', which is not a database. Use ` +
        'postgres://, mysql:// (or mariadb://) or mongodb://.',
    );
  }
  if (engine !== undefined && engine !== urlEngine) {
    throw new ConfigError(
      `${what} '${redact(raw)}' is a ${urlEngine} URL but the engine is '${engine}'. Make --engine and the URL's ` +
        'scheme agree.',
    );
  }
  if (url.password !== '') {
    throw new ConfigError(
      `${what} '${redact(raw)}' contains a password. Remove it from the URL and give it in ${passwordVar} ` +
        "(or the engine's own variable, PGPASSWORD / MYSQL_PWD), so it never appears in argv or logs.",
    );
  }
  const params: Record<string, string> = {};
  url.searchParams.forEach((value, key) => {
    params[key] = value;
  });
  const socket = params.socket ?? (params.host?.startsWith('/') ? params.host : undefined);
  delete params.socket;
  if (socket !== undefined) delete params.host;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new ConfigError(
      `${what} '${redact(raw)}' names no database. Put the database name in the path, e.g. ` +
        `${url.protocol}//user@host/dbname.`,
    );
  }
  let port = DEFAULT_PORTS[urlEngine];
  if (url.port !== '') port = Number(url.port);
  const host = url.hostname === '' ? undefined : decodeURIComponent(url.hostname);
  if (host === undefined && socket === undefined) {
    throw new ConfigError(
      `${what} '${redact(raw)}' names no host. Use ${url.protocol}//user@host/dbname, or ?socket=/path for a Unix ` +
        'socket.',
    );
  }
  return {
    engine: urlEngine,
    user: url.username === '' ? undefined : decodeURIComponent(url.username),
    host,
    port,
    socket,
    database,
    params,
    display: redact(raw),
  };
}

/** Where backups are stored. */
export enum StorageKind {
  FILE = 'file',
  S3 = 's3',
  GCS = 'gs',
  /** Azure Blob Storage: `az://account/container/prefix`. */
  AZURE = 'az',
}

/** A parsed storage URL. */
export interface StorageUrl {
  readonly kind: StorageKind;
  /** The bucket (s3, gs) or the container (az); empty for file. */
  readonly bucket: string;
  /** The storage account (az only). */
  readonly account?: string;
  /** The blob service endpoint an `https://ACCOUNT.blob.core.windows.net/…` URL names (az only). */
  readonly endpoint?: string;
  /** The key prefix (s3, gs) without leading or trailing slash, or the absolute directory (file). */
  readonly path: string;
  readonly display: string;
}

/** Blob service host names of the Azure clouds (public, China, US Government). */
const AZURE_BLOB_HOST = /^([^.]+)\.blob\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$/;

/**
 * Parse `az://ACCOUNT/CONTAINER/PREFIX` or `https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`
 * (Azure Blob Storage). The account is 3-24 lower-case letters and digits; the container 3-63
 * lower-case letters, digits and single hyphens, starting and ending with a letter or digit.
 * A SAS token is refused in the URL (it would show in argv and logs): it comes from
 * AZURE_STORAGE_SAS_TOKEN.
 */
export function parseAzureUrl(raw: string, what = '--to'): StorageUrl {
  const fix = 'Use az://ACCOUNT/CONTAINER/PREFIX or https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX.';
  const q = raw.indexOf('?');
  const shown = q < 0 ? raw : `${raw.slice(0, q)}?***`;
  if (q >= 0) {
    throw new ConfigError(
      `${what} '${shown}' has a query (a SAS token?). Give a SAS token in AZURE_STORAGE_SAS_TOKEN, ` +
        `never in the URL (argv and logs show it). ${fix}`,
    );
  }
  const m = /^(az|https):\/\/([^/]*)\/?([^/]*)\/?(.*)$/.exec(raw);
  if (m === null) throw new ConfigError(`${what} '${raw}' is not an Azure Blob Storage URL. ${fix}`);
  const [, scheme, authority, container, rest] = m;
  let account = authority;
  let endpoint: string | undefined;
  if (scheme === 'https') {
    const host = AZURE_BLOB_HOST.exec(authority);
    if (host === null) {
      throw new ConfigError(
        `${what} '${raw}' is an https URL but not of an Azure blob service (ACCOUNT.blob.core.windows.net). ${fix}`,
      );
    }
    account = host[1];
    endpoint = `https://${authority}`;
  }
  if (!/^[a-z0-9]{3,24}$/.test(account)) {
    throw new ConfigError(
      `${what} '${raw}' has the storage account name '${account}', which is not valid: ` +
        `use 3 to 24 lower-case letters and digits. ${fix}`,
    );
  }
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(container) || container.length < 3 || container.length > 63) {
    const named = container === '' ? 'no container' : `the container name '${container}', which is not valid`;
    throw new ConfigError(
      `${what} '${raw}' has ${named}: use 3 to 63 lower-case letters, digits and single hyphens, ` +
        `starting and ending with a letter or digit. ${fix}`,
    );
  }
  const path = rest.replace(/\/+$/, '');
  if (path !== '' && path.split('/').some((x) => x === '' || x === '.' || x === '..')) {
    const clean = path
      .split('/')
      .filter((x) => x !== '' && x !== '.' && x !== '..')
      .join('/');
    throw new ConfigError(
      `${what} '${raw}' has the prefix '${path}' with '.', '..' or empty segments. ` +
        `Use az://${account}/${container}/${clean}.`,
    );
  }
  return { kind: StorageKind.AZURE, account, bucket: container, path, endpoint, display: raw };
}

/**
 * Parse a storage URL: `file:///abs/path`, `s3://bucket/prefix`, `gs://bucket/prefix` or
 * `az://account/container/prefix` (see parseAzureUrl).
 * @param what the option or prop named in error messages
 */
export function parseStorageUrl(raw: string, what = '--to'): StorageUrl {
  const fix = 'Use file:///absolute/path, s3://bucket/prefix, gs://bucket/prefix or az://account/container/prefix.';
  const shown = redact(raw);
  const m = /^([a-z0-9]+):\/\/([^/]*)(\/.*)?$/.exec(raw);
  if (m === null) {
    if (raw.startsWith('/') || raw.startsWith('.')) {
      const as = raw.startsWith('/') ? shown : '/absolute/path';
      throw new ConfigError(
        `${what} '${shown}' is a path, not a URL. Write it as file://${as} (for ./backups: file://$PWD/backups).`,
      );
    }
    throw new ConfigError(`${what} '${shown}' is not a storage URL. ${fix}`);
  }
  const [, scheme, authority, rest = ''] = m;
  if (authority.includes('@')) {
    throw new ConfigError(
      `${what} '${shown}' carries credentials before '@'. Storage credentials come from the environment ` +
        `(AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*) or the task's role, never the URL. ${fix}`,
    );
  }
  checkEscapes(raw, what);
  switch (scheme) {
    case 'file': {
      if (authority !== '' && authority !== 'localhost') {
        throw new ConfigError(
          `${what} '${raw}' has the host '${authority}'; file URLs take an absolute path with three slashes. Use ` +
            'file:///absolute/path (for ./backups: file://$PWD/backups).',
        );
      }
      const path = decodeURIComponent(rest).replace(/\/+$/, '');
      if (path === '') throw new ConfigError(`${what} '${raw}' names no directory. ${fix}`);
      const segments = path.slice(1).split('/');
      if (segments.some((x) => x === '' || x === '.' || x === '..') || path.includes('\0')) {
        throw new ConfigError(
          `${what} '${raw}' is not a normalised absolute path (no '.', '..' or empty segments). ` +
            `Use file://${normalisePath(path)}.`,
        );
      }
      return { kind: StorageKind.FILE, bucket: '', path, display: raw };
    }
    case 's3':
    case 'gs': {
      const kind = scheme === 's3' ? StorageKind.S3 : StorageKind.GCS;
      const problem = bucketNameProblem(kind, authority);
      if (problem !== undefined) {
        const service = kind === StorageKind.S3 ? 'S3' : 'Cloud Storage';
        throw new ConfigError(
          `${what} '${raw}' has the bucket name '${authority}', which is not a valid bucket name for ${service}: ` +
            `it ${problem}. ${fix}`,
        );
      }
      const path = rest.replace(/^\/+/, '').replace(/\/+$/, '');
      if (path !== '' && path.split('/').some((x) => x === '' || x === '.' || x === '..')) {
        const clean = path
          .split('/')
          .filter((x) => x !== '' && x !== '.' && x !== '..')
          .join('/');
        throw new ConfigError(
          `${what} '${raw}' has the prefix '${path}' with '.', '..' or empty segments. Use ` +
            `${scheme}://${authority}/${clean}.`,
        );
      }
      return { kind, bucket: authority, path, display: raw };
    }
    case 'az':
    case 'https':
      return parseAzureUrl(raw, what);
    default:
      throw new ConfigError(`${what} '${raw}' has the scheme '${scheme}', which is not a storage backend. ${fix}`);
  }
}

function normalisePath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

/**
 * What is wrong with a bucket name under its service's naming rules, or undefined when it is
 * valid. S3: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a
 * letter or digit, no adjacent dots, not an IP address, none of the reserved prefixes and
 * suffixes. GCS: also underscores, up to 222 characters when dotted (each part at most 63),
 * not starting with 'goog', not containing 'google'.
 */
export function bucketNameProblem(kind: StorageKind.S3 | StorageKind.GCS, name: string): string | undefined {
  const s3 = kind === StorageKind.S3;
  const max = s3 || !name.includes('.') ? 63 : 222;
  if (name.length < 3 || name.length > max) return `has ${name.length} characters (use 3 to ${max})`;
  if (!(s3 ? /^[a-z0-9.-]+$/ : /^[a-z0-9._-]+$/).test(name)) {
    return `may hold only lower-case letters, digits, dots${s3 ? '' : ', underscores'} and hyphens`;
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must start and end with a letter or digit';
  if (/\.\.|\.-|-\./.test(name)) return 'may not have adjacent dots, nor a dot next to a hyphen';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'may not be an IP address';
  if (s3) {
    const prefix = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((p) => name.startsWith(p));
    if (prefix !== undefined) return `may not start with '${prefix}' (reserved by S3)`;
    const suffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((p) => name.endsWith(p));
    if (suffix !== undefined) return `may not end with '${suffix}' (reserved by S3)`;
  } else {
    if (name.split('.').some((part) => part.length > 63)) return 'has a dot-separated part longer than 63 characters';
    if (name.startsWith('goog')) return "may not start with 'goog' (reserved by Google)";
    if (/g[o0]{2}gle/.test(name)) return "may not contain 'google' or a look-alike (reserved by Google)";
  }
  return undefined;
}

/** A ConfigError for a `%` that does not start a two-digit hexadecimal escape. */
function checkEscapes(raw: string, what: string): void {
  const bad = /%(?![0-9A-Fa-f]{2})(.{0,2})/.exec(raw);
  if (bad !== null) {
    throw new ConfigError(
      `${what} '${redact(raw)}' has a malformed percent-escape '%${bad[1]}'. ` +
        'Each % must start a two-digit hexadecimal escape; write a literal % as %25.',
    );
  }
  // Valid escapes can still decode to invalid UTF-8 (e.g. %C3 alone).
  try {
    decodeURIComponent(raw);
  } catch {
    throw new ConfigError(
      `${what} '${redact(raw)}' has percent-escapes that are not UTF-8 (e.g. %C3 alone). ` +
        'Escape each byte of a UTF-8 character, e.g. %C3%A9 for é.',
    );
  }
}

/** How a backup's artifacts are encrypted. */
export enum EncryptionScheme {
  NONE = 'none',
  /** To an age recipient (`age1…` or an `ssh-ed25519`/`ssh-rsa` public key) with the `age` tool. */
  AGE = 'age',
  /** With `age` to a per-backup key whose only stored form is wrapped by this KMS key. */
  KMS = 'kms',
  /** With GnuPG (`gpg --encrypt`, AES256 with MDC) to a key of a key ring or a public key file. */
  GPG = 'gpg',
  /** With `openssl enc -aes-256-ctr`, the key derived (PBKDF2) from a passphrase file and a fresh salt. */
  OPENSSL = 'openssl',
}

/** The extension of an artifact each scheme encrypted (age and kms: are both age files). */
export const ENCRYPTION_EXT: Readonly<Record<EncryptionScheme, string>> = {
  [EncryptionScheme.NONE]: '',
  [EncryptionScheme.AGE]: '.age',
  [EncryptionScheme.KMS]: '.age',
  [EncryptionScheme.GPG]: '.gpg',
  [EncryptionScheme.OPENSSL]: '.enc',
};

/**
 * PBKDF2 (HMAC-SHA256) iterations of `openssl:` backups. Recorded in each backup's manifest;
 * archived log files (wal-push, binlog-stream) have none, so they are read with this value:
 * changing it needs a new extension for them.
 */
export const OPENSSL_PBKDF2_ITERATIONS = 100000;

/** A parsed `--encrypt` value. */
export interface EncryptionSpec {
  readonly scheme: EncryptionScheme;
  /**
   * The age recipient, the KMS key id/ARN/alias, the GnuPG recipient (key id, fingerprint,
   * e-mail address or the absolute path of a public key file) or the OpenSSL key file (absolute).
   */
  readonly key: string;
}

/**
 * What is wrong with an age recipient, or undefined when it is one: `age1…` whose Bech32
 * checksum holds and that carries a 32-byte X25519 key, or an `ssh-ed25519`/`ssh-rsa` public key.
 */
export function ageRecipientProblem(key: string): string | undefined {
  if (/^ssh-(ed25519|rsa) [A-Za-z0-9+/]+={0,2}( .*)?$/.test(key)) return undefined;
  if (key.startsWith('AGE-SECRET-KEY-')) {
    return 'that is an identity (a private key); give its public key, which age-keygen -y prints';
  }
  if (!key.toLowerCase().startsWith('age1')) {
    return "it does not start with 'age1' (nor is it an ssh-ed25519 or ssh-rsa public key)";
  }
  const decoded = bech32Decode(key);
  if (decoded === undefined) return 'its Bech32 checksum does not match (a character was changed, lost or added)';
  if (decoded.hrp !== 'age' || decoded.data.length !== 32) {
    return `it does not carry a 32-byte X25519 key (${decoded.data.length} bytes)`;
  }
  if (key !== key.toLowerCase()) return 'age recipients are written in lower case';
  return undefined;
}

/** Parse `none`, `age:RECIPIENT`, `kms:KEY_ID`, `gpg:RECIPIENT` or `openssl:KEYFILE`. */
export function parseEncryption(raw: string, what = '--encrypt'): EncryptionSpec {
  const fix =
    'Use none, age:age1… (an age recipient), kms:KEY_ID (a key id, key ARN or alias/NAME), ' +
    'gpg:RECIPIENT (a key id, fingerprint or e-mail in the GNUPGHOME key ring, or a public key file) ' +
    'or openssl:KEYFILE (a passphrase file of mode 0600).';
  if (raw === 'none') return { scheme: EncryptionScheme.NONE, key: '' };
  const i = raw.indexOf(':');
  const scheme = i < 0 ? raw : raw.slice(0, i);
  const key = i < 0 ? '' : raw.slice(i + 1);
  switch (scheme) {
    case 'age': {
      const problem = ageRecipientProblem(key);
      if (problem !== undefined) {
        const shown = key.toUpperCase().startsWith('AGE-SECRET-KEY-') ? 'age:AGE-SECRET-KEY-1…' : raw;
        throw new ConfigError(
          `${what} '${shown}' does not hold an age recipient: ${problem}. ${fix} ` +
            "Make one with: age-keygen -o key.txt (the recipient is the 'public key' it prints).",
        );
      }
      return { scheme: EncryptionScheme.AGE, key };
    }
    case 'kms':
      if (!KMS_KEY.test(key)) {
        throw new ConfigError(`${what} '${raw}' does not hold a KMS key id, key ARN or alias. ${fix}`);
      }
      return { scheme: EncryptionScheme.KMS, key };
    case 'gpg':
      return { scheme: EncryptionScheme.GPG, key: gpgRecipient(key, raw, what, fix) };
    case 'openssl':
      return { scheme: EncryptionScheme.OPENSSL, key: opensslKeyFile(key, what, `${what} '${raw}'`) };
    default:
      throw new ConfigError(`${what} '${raw}' is not an encryption scheme. ${fix}`);
  }
}

const KMS_KEY = new RegExp(
  '^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:(key|alias)/[A-Za-z0-9/_+=.@-]+|alias/[A-Za-z0-9/_-]+|' +
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$',
);

/** A GnuPG key id (16 hex digits, optionally 0x), a v4 (40) or v5 (64) fingerprint, or an e-mail address. */
const GPG_KEY_ID = /^(0x)?([0-9A-Fa-f]{16}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})!?$/;
const GPG_EMAIL = /^<?[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+>?$/;

/**
 * The recipient of a `gpg:` value: a key id, fingerprint or e-mail address as given, or a public
 * key file as an absolute path (it must exist and be a readable regular file).
 */
function gpgRecipient(key: string, raw: string, what: string, fix: string): string {
  if (GPG_KEY_ID.test(key) || GPG_EMAIL.test(key)) return key;
  if (key.includes('/') || key.includes('.')) {
    const file = path.resolve(key);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
      fs.accessSync(file, fs.constants.R_OK);
    } catch (e) {
      throw new ConfigError(
        `${what} '${raw}': the public key file ${file} cannot be read (${(e as NodeJS.ErrnoException).code}). ` +
          'Export it with: gpg --export --armor KEY_ID > key.asc; or give the key id, fingerprint or e-mail.',
      );
    }
    if (!stat.isFile()) throw new ConfigError(`${what} '${raw}': ${file} is not a regular file. ${fix}`);
    return file;
  }
  const shown = key === '' ? 'nothing' : `'${key}'`;
  throw new ConfigError(
    `${what} '${raw}' names ${shown} as the recipient, which is neither a key id (16 hex digits), a fingerprint ` +
      `(40 hex digits), an e-mail address, nor a file path. ${fix} List the keys with: gpg --list-keys`,
  );
}

/**
 * Check an OpenSSL passphrase file (the encryption key of `openssl:` and the `--identity` that
 * reads it back): an existing, non-empty regular file that neither group nor others may read
 * (mode 0600 or 0400). Returns its absolute path. Never reads nor echoes its content.
 * @param what the option named in messages
 * @param shown how the value is shown in messages
 */
export function opensslKeyFile(file: string, what = '--identity', shown = `${what} '${file}'`): string {
  const fix = 'Make one with: (umask 077; openssl rand -base64 32 > backup.key)';
  if (file === '') throw new ConfigError(`${shown} names no key file. ${fix}`);
  const abs = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${shown}: the key file ${abs} cannot be read (${code}). ${fix}`);
  }
  if (!stat.isFile()) throw new ConfigError(`${shown}: ${abs} is not a regular file. ${fix}`);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new ConfigError(
      `${shown}: the key file ${abs} has mode ${mode}, so others than its owner can read it; ` +
        `make it private with: chmod 600 ${abs}`,
    );
  }
  if (stat.size === 0) throw new ConfigError(`${shown}: the key file ${abs} is empty. ${fix}`);
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${shown}: the key file ${abs} cannot be read (${code}). ${fix}`);
  }
  return abs;
}

/** Query parameters that carry secrets: refused in URLs, masked in messages. */
const SECRET_PARAMS = /^(password|pass|passwd|pwd|sslpassword|secret|token|authmechanismproperties)$/i;

/**
 * Where a URL's userinfo (`user:password`) ends: at the last `@` before the query, or, when a
 * password holds `?`, at the last `@` of all unless a query value (a path, then `=`) precedes it.
 * -1 when there is no userinfo.
 */
function userinfoEnd(rest: string): number {
  const q = rest.indexOf('?');
  const before = rest.lastIndexOf('@', q < 0 ? rest.length : q);
  if (before >= 0 && (q < 0 || before < q)) return before;
  // A query starts after the path: with no '/' before the '?', that '?' is in a password.
  const last = rest.lastIndexOf('@');
  return last >= 0 && (!rest.slice(0, last).includes('=') || !rest.slice(0, q).includes('/')) ? last : -1;
}

function decodeOr(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** Why a URL carries a secret (a password in the userinfo or a query parameter), or undefined. */
export function secretIn(raw: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw);
  if (m === null) return undefined;
  const rest = raw.slice(m[0].length);
  const at = userinfoEnd(rest);
  if (at >= 0 && rest.slice(0, at).includes(':')) return 'user:password before the host';
  const q = rest.indexOf('?', at + 1);
  if (q < 0) return undefined;
  for (const pair of rest.slice(q + 1).split(/[&;]/)) {
    const name = decodeOr(pair.split('=')[0]);
    if (SECRET_PARAMS.test(name)) return `the query parameter '${name}'`;
  }
  return undefined;
}

/**
 * The URL with any password replaced by `***`, for messages: the userinfo after the user name
 * (however many `@`, `/` or `?` the password holds), and the value of every secret parameter.
 */
export function redact(raw: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw);
  if (m === null) return raw;
  let rest = raw.slice(m[0].length);
  const at = userinfoEnd(rest);
  if (at >= 0 && rest.slice(0, at).includes(':')) rest = `${rest.slice(0, rest.indexOf(':'))}:***${rest.slice(at)}`;
  const q = rest.indexOf('?', rest.lastIndexOf('@') + 1);
  if (q >= 0) {
    const parts = rest
      .slice(q + 1)
      .split(/([&;])/)
      .map((part) => {
        const [name] = part.split('=');
        return SECRET_PARAMS.test(decodeOr(name)) ? `${name}=***` : part;
      });
    rest = `${rest.slice(0, q)}?${parts.join('')}`;
  }
  return m[0] + rest;
}
