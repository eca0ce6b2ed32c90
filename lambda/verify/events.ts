/**
 * The events the function accepts, turned into tasks:
 *
 * - EventBridge `Object Created` from S3 (`source: aws.s3`) for a `…/manifest.json` key:
 *   verify that backup. This is what the constructs wire up.
 * - An S3 event notification (`Records[]`, as sent straight to Lambda, SNS or SQS): the same,
 *   for users who wire the bucket's notifications instead of EventBridge. Its keys are
 *   URL-encoded (`a b` arrives as `a+b`) and are decoded here.
 * - A `FreshnessCheckEvent` (`action: freshness`) from a schedule: publish the backup age.
 *
 * Anything else is an error: a rule or schedule that sends something else is misconfigured.
 */
import { FreshnessCheckEvent } from '../../lib/core/metrics';
import { MANIFEST_NAME } from '../../lib/core/model';

/** The function was invoked with an event it does not understand. */
export class EventError extends Error {
  public readonly name = 'EventError';
}

/** One piece of work from an event. */
export type VerifierTask =
  | { readonly kind: 'verify'; readonly bucket: string; readonly key: string; readonly keyIsEncoded: boolean }
  | { readonly kind: 'freshness'; readonly event: FreshnessCheckEvent }
  | { readonly kind: 'ignore'; readonly why: string };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Whether `key` names a manifest (`…/manifest.json`). */
export function isManifestKey(key: string): boolean {
  return key === MANIFEST_NAME || key.endsWith('/' + MANIFEST_NAME);
}

/** Decode a key from an S3 event notification (form encoding: `+` is a space). */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

function verifyTask(bucket: string, key: string, keyIsEncoded: boolean): VerifierTask {
  if (!isManifestKey(key)) return { kind: 'ignore', why: `s3://${bucket}/${key} is not a ${MANIFEST_NAME}` };
  return { kind: 'verify', bucket, key, keyIsEncoded };
}

/** The tasks an event asks for; throws `EventError` for an event of no known kind. */
export function tasksOf(event: unknown): VerifierTask[] {
  if (!isObject(event)) throw new EventError(`expected an event object, got ${JSON.stringify(event)}`);

  if (event.action === 'freshness') {
    const { bucket, prefix, databaseId } = event;
    if (!isText(bucket) || typeof prefix !== 'string' || !isText(databaseId)) {
      throw new EventError(
        `a freshness event needs a bucket, a prefix and a databaseId (strings), got ${JSON.stringify(event)}`,
      );
    }
    return [{ kind: 'freshness', event: { action: 'freshness', bucket, prefix, databaseId } }];
  }

  if (event.source === 'aws.s3') {
    const detailType = event['detail-type'];
    if (detailType !== undefined && detailType !== 'Object Created') {
      return [{ kind: 'ignore', why: `S3 event '${String(detailType)}' is not Object Created` }];
    }
    const detail = event.detail;
    const bucket = isObject(detail) && isObject(detail.bucket) ? detail.bucket.name : undefined;
    const key = isObject(detail) && isObject(detail.object) ? detail.object.key : undefined;
    if (!isText(bucket) || !isText(key))
      throw new EventError(
        `an S3 Object Created event without detail.bucket.name and detail.object.key: ${JSON.stringify(event)}`,
      );
    return [verifyTask(bucket, key, false)];
  }

  if (Array.isArray(event.Records)) {
    return event.Records.map((r: unknown): VerifierTask => {
      const s3 = isObject(r) ? r.s3 : undefined;
      const bucket = isObject(s3) && isObject(s3.bucket) ? s3.bucket.name : undefined;
      const key = isObject(s3) && isObject(s3.object) ? s3.object.key : undefined;
      if (!isText(bucket) || !isText(key))
        throw new EventError(
          `an S3 notification record without s3.bucket.name and s3.object.key: ${JSON.stringify(r)}`,
        );
      const name = isObject(r) ? r.eventName : undefined;
      if (typeof name === 'string' && !name.startsWith('ObjectCreated'))
        return { kind: 'ignore', why: `S3 event ${name} is not ObjectCreated` };
      return verifyTask(bucket, decodeEventKey(key), true);
    });
  }

  throw new EventError(
    'unknown event: expected an S3 Object Created event (source aws.s3), S3 notification Records or ' +
      `{"action":"freshness",…}; got ${JSON.stringify(event).slice(0, 500)}`,
  );
}
