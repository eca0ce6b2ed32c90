import { Token } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { ConfigError, EncryptionScheme } from '../../core';
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

/** Check a database id: it goes into metric dimensions, lock names and (by default) the key prefix. */
export function checkDatabaseId(id: string): void {
  if (Token.isUnresolved(id)) {
    throw new ConfigError('databaseId is an unresolved token; it names metrics and alarms, so give it as a literal string.');
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id)) {
    throw new ConfigError(`databaseId '${id}' is not usable; use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 'orders-prod').`);
  }
}

