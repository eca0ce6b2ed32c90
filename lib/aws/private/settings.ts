import { Token } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { ConfigError, EncryptionScheme, validateDatabaseId } from '../../core';
import type { BackupEncryption } from '../source';

/** The `--encrypt` value of an encryption. */
export function encryptValue(encryption: BackupEncryption, key: kms.IKey | undefined): string {
  switch (encryption.scheme) {
    case EncryptionScheme.KMS:
      return `kms:${key!.keyArn}`;
    case EncryptionScheme.AGE:
      return `age:${encryption.recipient}`;
    default:
      return 'none';
  }
}

/** Check a database id with the rule the CDKTF constructs use too (lib/core/checks). */
export function checkDatabaseId(id: string): void {
  if (Token.isUnresolved(id)) {
    throw new ConfigError(
      'databaseId is an unresolved token; it names metrics and alarms, so give it as a literal string.',
    );
  }
  validateDatabaseId(id);
}
