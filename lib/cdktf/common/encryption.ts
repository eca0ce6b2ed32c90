import { Token } from 'cdktf';
import { parseEncryption } from '../../core';

/**
 * How the runner encrypts a backup's artifacts before they leave the task (`--encrypt`), on
 * top of the storage's own encryption at rest (SSE-KMS on S3, CMEK on GCS).
 */
export class BackupEncryption {
  /** No client-side encryption: the storage's encryption at rest only. */
  public static none(): BackupEncryption {
    return new BackupEncryption('none');
  }

  /**
   * To an age recipient (`age1…`): only the holder of the matching identity can restore,
   * with the standard `age` tool.
   */
  public static age(recipient: string): BackupEncryption {
    return new BackupEncryption(`age:${recipient}`, recipient);
  }

  /**
   * With age to a per-backup key that is stored wrapped by this AWS KMS key (id, ARN or
   * alias). The runner needs `kms:Encrypt` on it (granted by the constructs) and restores need
   * `kms:Decrypt`. AWS only.
   */
  public static kms(keyArn: string): BackupEncryption {
    return new BackupEncryption(`kms:${keyArn}`, keyArn);
  }

  private constructor(
    /** The `--encrypt` value. */
    public readonly value: string,
    /** The recipient or key. */
    public readonly key?: string,
  ) {
    if (!Token.isUnresolved(value)) parseEncryption(value, 'encryption');
  }

  /** Whether this is the KMS scheme (which needs KMS permissions for the runner). */
  public get isKms(): boolean {
    return this.value.startsWith('kms:');
  }
}
