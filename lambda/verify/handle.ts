/**
 * What one invocation does, given the clients: the body of the Lambda handler, kept apart so
 * that tests run it with their own clients and settings.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { REQUIRABLE_SCHEMES } from '../../lib/core/contract';
import { VERIFIER_ENV } from '../../lib/core/metrics';
import { EncryptionScheme } from '../../lib/core/urls';
import { EmfEmitter, log, metricNamespace } from './emf';
import { decodeEventKey, tasksOf } from './events';
import { checkFreshness, FreshnessResult } from './freshness';
import { reportVerification } from './report';
import { isNamed, verifyBackup, VerificationFailure } from './verify';

/** The function's settings, from its environment. */
export interface VerifierSettings {
  readonly namespace: string;
  readonly topicArn?: string;
  readonly fallbackDatabaseId?: string;
  /** Every manifest must be encrypted with this scheme and authenticated (VERIFIER_ENV.REQUIRE_ENCRYPTION). */
  readonly requireEncryption?: EncryptionScheme;
}

/** Read `VERIFIER_ENV` from `env`. */
export function verifierSettings(env: NodeJS.ProcessEnv = process.env): VerifierSettings {
  return {
    namespace: metricNamespace(env),
    topicArn: env[VERIFIER_ENV.ALARM_TOPIC_ARN]?.trim() || undefined,
    fallbackDatabaseId: env[VERIFIER_ENV.DATABASE_ID]?.trim() || undefined,
    requireEncryption: requiredScheme(env[VERIFIER_ENV.REQUIRE_ENCRYPTION]?.trim() || undefined),
  };
}

/**
 * The scheme of VERIFIER_ENV.REQUIRE_ENCRYPTION; a value that is not one fails the function's
 * start (misconfigured).
 */
function requiredScheme(raw: string | undefined): EncryptionScheme | undefined {
  if (raw === undefined) return undefined;
  if (!REQUIRABLE_SCHEMES.includes(raw)) {
    throw new Error(
      `${VERIFIER_ENV.REQUIRE_ENCRYPTION} is '${raw}'; ` +
        `use one of: ${REQUIRABLE_SCHEMES.join(', ')} (or leave it unset).`,
    );
  }
  return raw as EncryptionScheme;
}

/** The clients and knobs one invocation uses. */
export interface HandleDeps {
  readonly s3: S3Client;
  readonly sns: SNSClient;
  /** Checks kms: manifests' HMACs. @default - not checked (reported as `mac: 'unchecked'`) */
  readonly kms?: KMSClient;
  readonly settings: VerifierSettings;
  /** @default - stdout */
  readonly emit?: EmfEmitter;
  /** Aborts artifact reads at the function's deadline. */
  readonly signal?: AbortSignal;
  /** @default - the current time */
  readonly now?: () => Date;
}

/** A verification as the handler returns it (without the manifest). */
export interface VerificationSummary {
  readonly ok: boolean;
  readonly bucket: string;
  readonly manifestKey: string;
  readonly backupId: string;
  readonly databaseId: string;
  readonly failures: readonly VerificationFailure[];
  readonly tagged: boolean;
  readonly notified: boolean;
}

/** What an invocation did. */
export interface HandleResult {
  readonly verifications: readonly VerificationSummary[];
  readonly freshness: readonly FreshnessResult[];
  readonly ignored: readonly string[];
}

/**
 * EventBridge is documented with plain keys, S3 notifications with URL-encoded ones. A key with
 * `%` or `+` that does not exist as given is tried decoded, so both deliveries work.
 */
export async function resolveManifestKey(s3: S3Client, bucket: string, key: string): Promise<string> {
  if (!/[%+]/.test(key)) return key;
  let decoded: string;
  try {
    decoded = decodeEventKey(key);
  } catch {
    return key; // not valid percent-encoding: it can only be the plain key
  }
  if (decoded === key) return key;
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return key;
  } catch (e) {
    if (isNamed(e, 'NotFound', 'NoSuchKey')) return decoded;
    throw e;
  }
}

/** Run every task of `event`. */
export async function handleEvent(deps: HandleDeps, event: unknown): Promise<HandleResult> {
  const now = deps.now ?? (() => new Date());
  const verifications: VerificationSummary[] = [];
  const freshness: FreshnessResult[] = [];
  const ignored: string[] = [];
  for (const task of tasksOf(event)) {
    switch (task.kind) {
      case 'ignore':
        log('info', `ignored: ${task.why}`);
        ignored.push(task.why);
        break;
      case 'freshness':
        freshness.push(
          await checkFreshness(deps.s3, task.event, now(), { emit: deps.emit, namespace: deps.settings.namespace }),
        );
        break;
      case 'verify': {
        const key = task.keyIsEncoded ? task.key : await resolveManifestKey(deps.s3, task.bucket, task.key);
        const result = await verifyBackup(deps.s3, task.bucket, key, {
          signal: deps.signal,
          fallbackDatabaseId: deps.settings.fallbackDatabaseId,
          kms: deps.kms,
          requireEncryption: deps.settings.requireEncryption,
        });
        const outcome = await reportVerification(deps.s3, deps.sns, result, {
          emit: deps.emit,
          namespace: deps.settings.namespace,
          topicArn: deps.settings.topicArn,
          now: now(),
        });
        const { ok, bucket, manifestKey, backupId, databaseId, failures } = result;
        verifications.push({ ok, bucket, manifestKey, backupId, databaseId, failures, ...outcome });
        break;
      }
    }
  }
  return { verifications, freshness, ignored };
}

/** The part of Lambda's context object this function uses. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
}

/**
 * A signal that fires shortly before the invocation's deadline, leaving time to publish the
 * metrics, tag the manifest and message the topic: a timeout then reports a `timeout` failure
 * instead of vanishing.
 */
export function deadlineSignal(context: LambdaContextLike | undefined): AbortSignal | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  const remaining = context.getRemainingTimeInMillis();
  const reserve = Math.min(20_000, Math.max(2_000, remaining * 0.1));
  return AbortSignal.timeout(Math.max(1_000, remaining - reserve));
}
