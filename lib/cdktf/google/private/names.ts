import { boundedName } from '../../common/names';

/**
 * A service account id (6 to 30 characters, lower-case letters, digits and hyphens, starting
 * with a letter) for `role` of database `databaseId`.
 */
export function serviceAccountId(databaseId: string, role: string): string {
  return boundedName(['dbb', databaseId, role], 30);
}

/** A resource name of at most `max` characters (Cloud Run jobs, schedulers, workflows: 63). */
export function resourceName(databaseId: string, suffix: string, max = 63): string {
  return boundedName(['dbbackup', databaseId, suffix], max);
}

/** Terraform reads `${` in any string as an interpolation; write it `$${` to keep it literal. */
export function escapeInterpolation(text: string): string {
  return text.replace(/\$\{/g, () => '$${').replace(/%\{/g, () => '%%{');
}

/** The Cloud KMS / Eventarc location of a bucket location (`EUROPE-WEST1` → `europe-west1`, `EU` → `europe`). */
export function kmsLocation(bucketLocation: string): string {
  const l = bucketLocation.toLowerCase();
  return ({ eu: 'europe', us: 'us', asia: 'asia' } as Record<string, string>)[l] ?? l;
}
