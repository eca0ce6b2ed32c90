import { Token } from 'aws-cdk-lib';

/** True when a value holds an unresolved token, so it cannot be checked at construct time. */
export function unresolved(value: unknown): boolean {
  return Token.isUnresolved(value);
}
