import type { BlobServiceClient, StoragePipelineOptions } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { ConfigError } from '../../../lib/core/errors';
import { StorageUrl } from '../../../lib/core/urls';

/**
 * The variables the Azure backend reads, in the order it looks at them (the first one set
 * wins; DefaultAzureCredential comes last). They are the Azure CLI's and SDKs' own names.
 */
export const AZURE_ENV = {
  CONNECTION_STRING: 'AZURE_STORAGE_CONNECTION_STRING',
  ACCOUNT: 'AZURE_STORAGE_ACCOUNT',
  KEY: 'AZURE_STORAGE_KEY',
  SAS_TOKEN: 'AZURE_STORAGE_SAS_TOKEN',
  /** The blob service endpoint, e.g. an emulator's `http://127.0.0.1:10000/devstoreaccount1`. */
  BLOB_ENDPOINT: 'AZURE_STORAGE_BLOB_ENDPOINT',
} as const;

/** A client for one account, and what its credentials are (for messages; never a secret). */
export interface AzureAccess {
  readonly client: BlobServiceClient;
  /** The account's blob service URL, without any SAS token. */
  readonly endpoint: string;
  readonly description: string;
}

/** The `Key=Value;…` pairs of a connection string (values may hold `=`, as base64 keys do). */
function connectionStringFields(cs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return out;
}

/** The account an endpoint serves: its first host label, or its first path segment for an emulator's IP-style URL. */
function accountOfEndpoint(endpoint: string): string | undefined {
  try {
    const u = new URL(endpoint);
    if (/^[\d.]+$|^\[|^localhost$/.test(u.hostname)) return u.pathname.split('/').filter((s) => s !== '')[0];
    return u.hostname.split('.')[0];
  } catch {
    return undefined;
  }
}

function checkEndpoint(endpoint: string, where: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new ConfigError(
      `${where} '${endpoint}' is not a URL. Give the blob service endpoint, e.g.` +
        ' https://ACCOUNT.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1 for Azurite.',
    );
  }
  if (u.search !== '' || u.username !== '' || u.password !== '') {
    throw new ConfigError(
      `${where} carries a query or credentials.` +
        ` Give the bare endpoint there and the SAS token in ${AZURE_ENV.SAS_TOKEN}.`,
    );
  }
  return endpoint.replace(/\/+$/, '');
}

const BASE64_KEY = /^[A-Za-z0-9+/]{20,}={0,2}$/;

/**
 * Credentials from the standard chain, first match wins:
 * 1. `AZURE_STORAGE_CONNECTION_STRING` (AccountKey or SharedAccessSignature; its BlobEndpoint, or
 *    `UseDevelopmentStorage=true` for Azurite on its default port);
 * 2. `AZURE_STORAGE_KEY`, the account's shared key (`AZURE_STORAGE_ACCOUNT`, when set, must name the URL's account);
 * 3. `AZURE_STORAGE_SAS_TOKEN`, a SAS token for the account or container;
 * 4. `DefaultAzureCredential` from `@azure/identity`: a service principal or workload identity from
 *    `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/…, a managed identity, then developer logins (Azure CLI, …).
 * The endpoint is `AZURE_STORAGE_BLOB_ENDPOINT`, else the connection string's, else the URL's
 * (https form), else `https://ACCOUNT.blob.core.windows.net`. No secret ever goes into a message.
 */
export function azureAccess(
  url: StorageUrl,
  env: NodeJS.ProcessEnv = process.env,
  pipeline: StoragePipelineOptions = {},
): AzureAccess {
  // `require`, not `import`: the bundler then takes the SDK's CommonJS build, whose ESM build
  // needs `import.meta.url`, which a CommonJS bundle does not have.
  const sdk = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
  const { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential } = sdk;
  const account = url.account ?? '';
  const set = (name: string) => (env[name] ?? '') !== '';
  const fromEnv = set(AZURE_ENV.BLOB_ENDPOINT)
    ? checkEndpoint(env[AZURE_ENV.BLOB_ENDPOINT]!, AZURE_ENV.BLOB_ENDPOINT)
    : undefined;
  const standard = url.endpoint ?? `https://${account}.blob.core.windows.net`;

  if (set(AZURE_ENV.CONNECTION_STRING)) {
    const f = connectionStringFields(env[AZURE_ENV.CONNECTION_STRING]!);
    const what = AZURE_ENV.CONNECTION_STRING;
    let name = f.get('accountname');
    let key = f.get('accountkey');
    const given = f.get('blobendpoint');
    let endpoint = fromEnv ?? (given !== undefined ? checkEndpoint(given, `${what}'s BlobEndpoint`) : undefined);
    if (f.get('usedevelopmentstorage') === 'true') {
      // Azurite's well-known development account (its key is published by Microsoft; not a secret).
      name = 'devstoreaccount1';
      key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
      endpoint ??= 'http://127.0.0.1:10000/devstoreaccount1';
    }
    const suffix = f.get('endpointsuffix') ?? 'core.windows.net';
    const protocol = f.get('defaultendpointsprotocol') ?? 'https';
    endpoint ??= url.endpoint ?? `${protocol}://${account}.blob.${suffix}`;
    const served = name ?? accountOfEndpoint(endpoint);
    if (served !== undefined && served !== account) {
      throw new ConfigError(
        `${what} is for the storage account '${served}', but '${url.display}' names '${account}'.` +
          ` Use the connection string of '${account}' or fix the URL.`,
      );
    }
    const sas = f.get('sharedaccesssignature');
    if (key !== undefined && key !== '') {
      if (!BASE64_KEY.test(key)) {
        throw new ConfigError(
          `${what} has an AccountKey that is not base64.` +
            " Copy the connection string again from the storage account's Access keys.",
        );
      }
      const client = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, key), pipeline);
      return { client, endpoint, description: `the shared key in ${what}` };
    }
    if (sas !== undefined && sas !== '') {
      const withSas = `${endpoint}?${sas.replace(/^\?/, '')}`;
      const client = new BlobServiceClient(withSas, new AnonymousCredential(), pipeline);
      return { client, endpoint, description: `the SAS token in ${what}` };
    }
    throw new ConfigError(
      `${what} holds neither AccountKey nor SharedAccessSignature. Use a connection string from the storage` +
        " account's Access keys (or a SAS connection string), or unset it to use a managed identity.",
    );
  }

  const endpoint = fromEnv ?? standard;
  if (set(AZURE_ENV.KEY)) {
    const named = env[AZURE_ENV.ACCOUNT];
    if (named !== undefined && named !== '' && named !== account) {
      throw new ConfigError(
        `${AZURE_ENV.ACCOUNT} is '${named}', but '${url.display}' names the account '${account}'.` +
          ` The shared key in ${AZURE_ENV.KEY} is one account's; make the two agree.`,
      );
    }
    const key = env[AZURE_ENV.KEY]!.trim();
    if (!BASE64_KEY.test(key)) {
      throw new ConfigError(
        `${AZURE_ENV.KEY} is not base64 (an account key is 88 base64 characters).` +
          " Copy key1 or key2 from the storage account's Access keys.",
      );
    }
    const client = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, key), pipeline);
    return { client, endpoint, description: `the shared key of '${account}' in ${AZURE_ENV.KEY}` };
  }
  if (set(AZURE_ENV.SAS_TOKEN)) {
    const sas = env[AZURE_ENV.SAS_TOKEN]!.trim().replace(/^\?/, '');
    if (!/(^|&)sig=[^&]+/.test(sas)) {
      throw new ConfigError(
        `${AZURE_ENV.SAS_TOKEN} is not a SAS token (it has no sig= parameter).` +
          " Give the token's query string, e.g. sv=…&sp=rcwlt&sig=….",
      );
    }
    const client = new BlobServiceClient(`${endpoint}?${sas}`, new AnonymousCredential(), pipeline);
    return { client, endpoint, description: `the SAS token in ${AZURE_ENV.SAS_TOKEN}` };
  }
  // Loaded only here: @azure/identity costs startup time that key and SAS users need not pay.
  const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
  const credential: TokenCredential = new DefaultAzureCredential();
  const client = new BlobServiceClient(endpoint, credential, pipeline);
  const description =
    'DefaultAzureCredential (AZURE_CLIENT_ID/AZURE_TENANT_ID/…, workload or managed identity, Azure CLI login)';
  return { client, endpoint, description };
}

/** Remove anything that looks like a SAS signature or account key from a message. */
export function scrub(message: string): string {
  return message.replace(/\bsig=[^&\s'"]+/gi, 'sig=***').replace(/AccountKey=[^;\s'"]+/gi, 'AccountKey=***');
}
