/**
 * The verification function. It runs when a manifest is committed (S3 `Object Created` through
 * EventBridge) and on a schedule (`FreshnessCheckEvent`). See the README (The verification function).
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { deadlineSignal, handleEvent, HandleResult, LambdaContextLike, verifierSettings } from './handle';

// Created once per execution environment and reused across invocations. Both honour
// AWS_ENDPOINT_URL (an S3-compatible server there is addressed path-style, as the runner does).
// The function hashes every byte it reads itself, so the SDK's own response checksum
// validation (a second pass over the same bytes) is turned off.
const s3 = new S3Client({
  responseChecksumValidation: 'WHEN_REQUIRED',
  forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
});
const sns = new SNSClient({});
// kms: manifests' HMACs: the function needs kms:Decrypt on the backups' key to check them.
const kms = new KMSClient({});

export async function handler(event: unknown, context?: LambdaContextLike): Promise<HandleResult> {
  return handleEvent({ s3, sns, kms, settings: verifierSettings(), signal: deadlineSignal(context) }, event);
}

export { handleEvent, verifierSettings, deadlineSignal } from './handle';
export type { HandleResult } from './handle';
export { verifyBackup, CheckMethod } from './verify';
export type { VerificationResult, VerificationFailure } from './verify';
export { reportVerification, tagManifest } from './report';
export { checkFreshness } from './freshness';
export type { FreshnessResult } from './freshness';
export { decideChecksumSkip } from './checksum';
