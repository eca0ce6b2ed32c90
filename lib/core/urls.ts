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
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `${what} '${redact(raw)}' is not a URL. Use e.g. postgres://user@host:5432/dbname, mysql://user@host:3306/dbname or mongodb://user@host:27017/dbname.`,
    );
  }
  const urlEngine = SCHEMES[url.protocol];
  if (urlEngine === undefined) {
    throw new ConfigError(
      `${what} '${redact(raw)}' has the scheme '${url.protocol.replace(/:$/, '')}', which is not a database. Use postgres://, mysql:// (or mariadb://) or mongodb://.`,
    );
  }
  if (engine !== undefined && engine !== urlEngine) {
    throw new ConfigError(
      `${what} '${redact(raw)}' is a ${urlEngine} URL but the engine is '${engine}'. Make --engine and the URL's scheme agree.`,
    );
  }
  if (url.password !== '') {
    throw new ConfigError(
      `${what} '${redact(raw)}' contains a password. Remove it from the URL and give it in ${what === '--target' ? 'DBBACKUP_TARGET_PASSWORD' : 'DBBACKUP_SOURCE_PASSWORD'} (or the engine's own variable, PGPASSWORD / MYSQL_PWD), so it never appears in argv or logs.`,
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
      `${what} '${redact(raw)}' names no database. Put the database name in the path, e.g. ${url.protocol}//user@host/dbname.`,
    );
  }
  let port = DEFAULT_PORTS[urlEngine];
  if (url.port !== '') port = Number(url.port);
  const host = url.hostname === '' ? undefined : decodeURIComponent(url.hostname);
  if (host === undefined && socket === undefined) {
    throw new ConfigError(`${what} '${redact(raw)}' names no host. Use ${url.protocol}//user@host/dbname, or ?socket=/path for a Unix socket.`);
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
    throw new ConfigError(`${what} '${shown}' has a query (a SAS token?). Give a SAS token in AZURE_STORAGE_SAS_TOKEN, never in the URL (argv and logs show it). ${fix}`);
  }
  const m = /^(az|https):\/\/([^/]*)\/?([^/]*)\/?(.*)$/.exec(raw);
  if (m === null) throw new ConfigError(`${what} '${raw}' is not an Azure Blob Storage URL. ${fix}`);
  const [, scheme, authority, container, rest] = m;
  let account = authority;
  let endpoint: string | undefined;
  if (scheme === 'https') {
    const host = AZURE_BLOB_HOST.exec(authority);
    if (host === null) {
      throw new ConfigError(`${what} '${raw}' is an https URL but not of an Azure blob service (ACCOUNT.blob.core.windows.net). ${fix}`);
    }
    account = host[1];
    endpoint = `https://${authority}`;
  }
  if (!/^[a-z0-9]{3,24}$/.test(account)) {
    throw new ConfigError(`${what} '${raw}' has the storage account name '${account}', which is not valid: use 3 to 24 lower-case letters and digits. ${fix}`);
  }
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(container) || container.length < 3 || container.length > 63) {
    const named = container === '' ? 'no container' : `the container name '${container}', which is not valid`;
    throw new ConfigError(`${what} '${raw}' has ${named}: use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit. ${fix}`);
  }
  const path = rest.replace(/\/+$/, '');
  if (path !== '' && path.split('/').some((x) => x === '' || x === '.' || x === '..')) {
    const clean = path.split('/').filter((x) => x !== '' && x !== '.' && x !== '..').join('/');
    throw new ConfigError(`${what} '${raw}' has the prefix '${path}' with '.', '..' or empty segments. Use az://${account}/${container}/${clean}.`);
  }
  return { kind: StorageKind.AZURE, account, bucket: container, path, endpoint, display: raw };
}

/**
 * Parse a storage URL: `file:///abs/path`, `s3://bucket/prefix`, `gs://bucket/prefix` or
 * `az://account/container/prefix` (see parseAzureUrl).
 * @param what the option or prop named in error messages
 */
export function parseStorageUrl(raw: string, what = '--to'): StorageUrl {
  const fix = 'Use file:///absolute/path, s3://bucket/prefix or gs://bucket/prefix.';
  const m = /^([a-z0-9]+):\/\/([^/]*)(\/.*)?$/.exec(raw);
  if (m === null) {
    if (raw.startsWith('/') || raw.startsWith('.')) {
      throw new ConfigError(`${what} '${raw}' is a path, not a URL. Write it as file://${raw.startsWith('/') ? raw : '/absolute/path'} (for ./backups: file://$PWD/backups).`);
    }
    throw new ConfigError(`${what} '${raw}' is not a storage URL. ${fix}`);
  }
  const [, scheme, authority, rest = ''] = m;
  switch (scheme) {
    case 'file': {
      if (authority !== '' && authority !== 'localhost') {
        throw new ConfigError(`${what} '${raw}' has the host '${authority}'; file URLs take an absolute path with three slashes. Use file:///absolute/path (for ./backups: file://$PWD/backups).`);
      }
      const path = decodeURIComponent(rest).replace(/\/+$/, '');
      if (path === '') throw new ConfigError(`${what} '${raw}' names no directory. ${fix}`);
      return { kind: StorageKind.FILE, bucket: '', path, display: raw };
    }
    case 's3':
    case 'gs': {
      if (!/^[a-z0-9][a-z0-9.\-_]{1,221}[a-z0-9]$/.test(authority)) {
        throw new ConfigError(`${what} '${raw}' has the bucket name '${authority}', which is not a valid bucket name (lower-case letters, digits, dots and hyphens, 3 to 63 characters). ${fix}`);
      }
      const path = rest.replace(/^\/+/, '').replace(/\/+$/, '');
      return { kind: scheme === 's3' ? StorageKind.S3 : StorageKind.GCS, bucket: authority, path, display: raw };
    }
    case 'az':
    case 'https':
      return parseAzureUrl(raw, what);
    default:
      throw new ConfigError(`${what} '${raw}' has the scheme '${scheme}', which is not a storage backend. ${fix}`);
  }
}

/** How a backup's artifacts are encrypted. */
export enum EncryptionScheme {
  NONE = 'none',
  /** To an age recipient (`age1…` or an `ssh-ed25519`/`ssh-rsa` public key) with the `age` tool. */
  AGE = 'age',
  /** With `age` to a per-backup key whose only stored form is wrapped by this KMS key. */
  KMS = 'kms',
  /** With GnuPG to a recipient (not supported by this release). */
  GPG = 'gpg',
}

/** A parsed `--encrypt` value. */
export interface EncryptionSpec {
  readonly scheme: EncryptionScheme;
  /** The age recipient, the KMS key id/ARN/alias, or the GnuPG recipient. */
  readonly key: string;
}

/** Parse `none`, `age:RECIPIENT` or `kms:KEY_ID`. */
export function parseEncryption(raw: string, what = '--encrypt'): EncryptionSpec {
  const fix = 'Use none, age:age1… (an age recipient) or kms:KEY_ID (a key id, key ARN or alias/NAME).';
  if (raw === 'none') return { scheme: EncryptionScheme.NONE, key: '' };
  const i = raw.indexOf(':');
  const scheme = i < 0 ? raw : raw.slice(0, i);
  const key = i < 0 ? '' : raw.slice(i + 1);
  switch (scheme) {
    case 'age':
      if (!/^age1[02-9ac-hj-np-z]{58}$/.test(key) && !/^ssh-(ed25519|rsa) [A-Za-z0-9+/=]+( .*)?$/.test(key)) {
        throw new ConfigError(`${what} '${raw}' does not hold an age recipient. ${fix} Make one with: age-keygen -o key.txt (the recipient is the 'public key' it prints).`);
      }
      return { scheme: EncryptionScheme.AGE, key };
    case 'kms':
      if (!/^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_+=.@-]+|alias\/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/.test(key)) {
        throw new ConfigError(`${what} '${raw}' does not hold a KMS key id, key ARN or alias. ${fix}`);
      }
      return { scheme: EncryptionScheme.KMS, key };
    case 'gpg':
      throw new ConfigError(`${what} '${raw}': gpg encryption is not supported by this release. ${fix}`);
    default:
      throw new ConfigError(`${what} '${raw}' is not an encryption scheme. ${fix}`);
  }
}

/** The URL with any password replaced by `***`, for messages. */
export function redact(raw: string): string {
  return raw.replace(/^([a-z0-9+.-]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
