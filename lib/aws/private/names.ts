import { Token } from 'aws-cdk-lib';

/** `OrdersBackup` → `orders-backup`: a readable database id from a construct id. */
export function kebab(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
}

/** True when a value holds an unresolved token, so it cannot be checked at construct time. */
export function unresolved(value: unknown): boolean {
  return Token.isUnresolved(value);
}
