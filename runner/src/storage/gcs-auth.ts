import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../../lib/core/errors';
import { log } from '../log';

/** The OAuth scope the runner asks for: read and create objects (what the bucket's IAM then narrows). */
export const GCS_SCOPE = 'https://www.googleapis.com/auth/devstorage.read_write';

/** Where access tokens for Cloud Storage come from. */
export interface TokenSource {
  /** Where the credentials come from, for messages (never a secret). */
  readonly description: string;
  /** A bearer token valid for at least a while, or undefined to send none (an emulator without credentials). */
  token(): Promise<string | undefined>;
  /** Forget the cached token (the server answered 401), so the next call fetches a new one. */
  invalidate(): void;
}

/** A token and when it stops being good. */
interface Token {
  readonly value: string;
  readonly expiresAt: number;
  /** When to fetch the next one: 5 minutes before expiry, or halfway for short-lived tokens. */
  readonly refreshAt: number;
}

function tokenFrom(value: string, expiresInSeconds: number, now = Date.now()): Token {
  const life = Math.max(0, expiresInSeconds) * 1000;
  const margin = life > 600_000 ? 300_000 : life / 2;
  return { value, expiresAt: now + life, refreshAt: now + life - margin };
}

/** Caches a fetched token and refreshes it before it expires; concurrent callers share one fetch. */
class RefreshingTokenSource implements TokenSource {
  private current?: Token;
  private pending?: Promise<Token>;

  constructor(
    public readonly description: string,
    private readonly fetchToken: () => Promise<{ access_token: string; expires_in?: number }>,
  ) {}

  public async token(): Promise<string> {
    const now = Date.now();
    if (this.current !== undefined && now < this.current.refreshAt) return this.current.value;
    this.pending ??= this.fetchToken()
      .then((r) => tokenFrom(r.access_token, r.expires_in ?? 3600))
      .finally(() => (this.pending = undefined));
    try {
      this.current = await this.pending;
    } catch (e) {
      // A refresh that fails while the old token is still valid is not fatal yet.
      if (this.current !== undefined && now < this.current.expiresAt - 30_000) {
        log.warn(
          `could not refresh the Google access token (${this.description}); using the current one until it expires`,
          { error: (e as Error).message },
        );
        return this.current.value;
      }
      throw e;
    }
    return this.current.value;
  }

  public invalidate(): void {
    this.current = undefined;
  }
}

/** A fixed token (`GOOGLE_OAUTH_ACCESS_TOKEN`), or none at all. */
class StaticTokenSource implements TokenSource {
  constructor(
    public readonly description: string,
    private readonly value: string | undefined,
  ) {}
  public async token(): Promise<string | undefined> {
    return this.value;
  }
  public invalidate(): void {}
}

/** The JSON of a credentials file: a service-account key or gcloud's user credentials. */
interface CredentialsFile {
  readonly type?: string;
  readonly client_email?: string;
  readonly private_key?: string;
  readonly private_key_id?: string;
  readonly token_uri?: string;
  readonly client_id?: string;
  readonly client_secret?: string;
  readonly refresh_token?: string;
}

const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/**
 * POST a form to a token endpoint and return its JSON; the message of a failure names the
 * endpoint's error, never the request.
 */
async function postTokenRequest(
  tokenUri: string,
  form: Record<string, string>,
  what: string,
): Promise<{ access_token: string; expires_in?: number }> {
  let res: Response;
  try {
    res = await fetch(tokenUri, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new Error(`could not reach the token endpoint ${tokenUri} for ${what}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let body: { access_token?: string; expires_in?: number; error?: string; error_description?: string } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: reported below
  }
  if (!res.ok || typeof body.access_token !== 'string') {
    const reason =
      body.error !== undefined
        ? `${body.error}${body.error_description ? `: ${body.error_description}` : ''}`
        : `HTTP ${res.status}`;
    throw new Error(`the token endpoint ${tokenUri} refused ${what} (${reason})`);
  }
  return { access_token: body.access_token, expires_in: body.expires_in };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A signed RS256 JWT asserting the service account, for the OAuth 2.0 JWT bearer grant. */
export function serviceAccountAssertion(cred: CredentialsFile, scope: string, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  const header = { alg: 'RS256', typ: 'JWT', ...(cred.private_key_id ? { kid: cred.private_key_id } : {}) };
  const claims = { iss: cred.client_email, scope, aud: cred.token_uri ?? DEFAULT_TOKEN_URI, iat, exp: iat + 3600 };
  const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = crypto.sign('RSA-SHA256', Buffer.from(unsigned), cred.private_key!);
  return `${unsigned}.${base64url(signature)}`;
}

/** The token source for a credentials file (a service-account key or gcloud's `authorized_user` credentials). */
function fromCredentialsFile(file: string, origin: string, scope: string): TokenSource {
  let cred: CredentialsFile;
  try {
    cred = JSON.parse(fs.readFileSync(file, 'utf8')) as CredentialsFile;
  } catch (e) {
    throw new ConfigError(
      `${origin} '${file}' cannot be read as a JSON credentials file (${(e as Error).message}). Point it at a ` +
        'service-account key file, or unset it to use the attached service account.',
    );
  }
  const description = `${cred.type ?? 'credentials'} from ${origin} ${file}`;
  switch (cred.type) {
    case 'service_account': {
      if (typeof cred.client_email !== 'string' || typeof cred.private_key !== 'string') {
        throw new ConfigError(
          `${origin} '${file}' is a service_account file without client_email or private_key. Download a new JSON ` +
            'key for the service account.',
        );
      }
      const tokenUri = cred.token_uri ?? DEFAULT_TOKEN_URI;
      return new RefreshingTokenSource(description, () =>
        postTokenRequest(
          tokenUri,
          {
            grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
            assertion: serviceAccountAssertion(cred, scope),
          },
          `the service account ${cred.client_email}`,
        ),
      );
    }
    case 'authorized_user': {
      if (
        typeof cred.refresh_token !== 'string' ||
        typeof cred.client_id !== 'string' ||
        typeof cred.client_secret !== 'string'
      ) {
        throw new ConfigError(
          `${origin} '${file}' is an authorized_user file without client_id, client_secret or refresh_token. Run ` +
            `'gcloud auth application-default login' again.`,
        );
      }
      const tokenUri = cred.token_uri ?? DEFAULT_TOKEN_URI;
      return new RefreshingTokenSource(description, () =>
        postTokenRequest(
          tokenUri,
          {
            grant_type: 'refresh_token',
            client_id: cred.client_id!,
            client_secret: cred.client_secret!,
            refresh_token: cred.refresh_token!,
          },
          'the gcloud user credentials',
        ),
      );
    }
    default:
      throw new ConfigError(
        `${origin} '${file}' holds credentials of type '${cred.type}', which dbbackup does not support (it supports ` +
          'service_account and authorized_user). ' +
          'Run it under an attached service account (Cloud Run, GCE, GKE: no file needed), or give a token in ' +
          `GOOGLE_OAUTH_ACCESS_TOKEN (e.g. from 'gcloud auth print-access-token').`,
      );
  }
}

/** The metadata server of Cloud Run, GCE and GKE: the attached service account's tokens. */
function fromMetadataServer(host: string): TokenSource {
  const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token`;
  return new RefreshingTokenSource(`the attached service account (metadata server ${host})`, async () => {
    const delays = [200, 500, 1000, 2000];
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(url, { headers: { 'Metadata-Flavor': 'Google' }, signal: AbortSignal.timeout(5000) });
        if (res.ok) {
          const body = (await res.json()) as { access_token?: string; expires_in?: number };
          if (typeof body.access_token !== 'string')
            throw new Error('the metadata server answered without an access_token');
          return { access_token: body.access_token, expires_in: body.expires_in };
        }
        if (res.status < 500 || attempt >= delays.length)
          throw new Error(`the metadata server answered HTTP ${res.status}`);
      } catch (e) {
        if (attempt >= delays.length) {
          throw new ConfigError(
            'no Google credentials: GOOGLE_OAUTH_ACCESS_TOKEN and GOOGLE_APPLICATION_CREDENTIALS are not set, there ' +
              `is no gcloud application-default login, and the metadata server ${host} cannot give a token ` +
              `(${(e as Error).message}). ` +
              'Run under a service account (Cloud Run job, GCE, GKE), set GOOGLE_APPLICATION_CREDENTIALS to a ' +
              `service-account key file, or run 'gcloud auth application-default login'.`,
          );
        }
      }
      await new Promise((r) => setTimeout(r, delays[attempt]));
    }
  });
}

/** gcloud's application-default credentials file, where `gcloud auth application-default login` writes it. */
function gcloudCredentialsFile(env: NodeJS.ProcessEnv): string {
  const dir =
    env.CLOUDSDK_CONFIG ??
    (process.platform === 'win32'
      ? path.join(env.APPDATA ?? '', 'gcloud')
      : path.join(env.HOME ?? os.homedir(), '.config', 'gcloud'));
  return path.join(dir, 'application_default_credentials.json');
}

/**
 * Application Default Credentials, in the order Google's client libraries look for them:
 * 1. `GOOGLE_OAUTH_ACCESS_TOKEN`: a token given as is (it is not refreshed);
 * 2. `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key file (an RS256-signed JWT is
 *    exchanged at its `token_uri`) or gcloud `authorized_user` credentials;
 * 3. gcloud's application-default login (`~/.config/gcloud/application_default_credentials.json`);
 * 4. the metadata server (`GCE_METADATA_HOST`, else `metadata.google.internal`): the service
 *    account attached to the Cloud Run job, VM or GKE workload, keyless.
 * With an emulator (`emulator`), steps 3 and 4 are skipped and no credentials means no token,
 * as Google's libraries do with `STORAGE_EMULATOR_HOST`.
 */
export function defaultCredentials(
  env: NodeJS.ProcessEnv = process.env,
  options: { emulator?: boolean; scope?: string } = {},
): TokenSource {
  const scope = options.scope ?? GCS_SCOPE;
  const token = env.GOOGLE_OAUTH_ACCESS_TOKEN;
  if (token !== undefined && token !== '')
    return new StaticTokenSource('the token in GOOGLE_OAUTH_ACCESS_TOKEN', token);
  const file = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (file !== undefined && file !== '') return fromCredentialsFile(file, 'GOOGLE_APPLICATION_CREDENTIALS', scope);
  if (options.emulator === true) return new StaticTokenSource('no credentials (emulator)', undefined);
  const gcloud = gcloudCredentialsFile(env);
  if (fs.existsSync(gcloud)) return fromCredentialsFile(gcloud, "gcloud's application-default credentials", scope);
  return fromMetadataServer(env.GCE_METADATA_HOST ?? 'metadata.google.internal');
}
