/**
 * Function runtimes: the one this release deploys, and the ones the clouds have deprecated
 * (they no longer let anyone create a function on them). A test fails when a construct renders
 * a deprecated runtime, so a new deprecation is one line here.
 */

/** The Lambda runtime of the verification function (the bundle targets Node.js 20 syntax, runs on 22). */
export const LAMBDA_NODE_RUNTIME = 'nodejs22.x';

/** The Cloud Run functions / App Engine runtime id of the same Node.js line, for Google. */
export const GOOGLE_NODE_RUNTIME = 'nodejs22';

/** A runtime a cloud has deprecated, and since when creating functions on it is blocked. */
export interface DeprecatedRuntime {
  readonly cloud: 'aws' | 'google';
  readonly runtime: string;
  /** The ISO date the cloud deprecated it (published runtime schedules); new functions are refused after. */
  readonly deprecatedOn: string;
}

/** Node.js runtimes the clouds have deprecated (AWS Lambda and Google Cloud runtime schedules). */
export const DEPRECATED_RUNTIMES: readonly DeprecatedRuntime[] = [
  { cloud: 'aws', runtime: 'nodejs', deprecatedOn: '2016-10-31' },
  { cloud: 'aws', runtime: 'nodejs4.3', deprecatedOn: '2020-03-05' },
  { cloud: 'aws', runtime: 'nodejs6.10', deprecatedOn: '2019-08-12' },
  { cloud: 'aws', runtime: 'nodejs8.10', deprecatedOn: '2020-03-06' },
  { cloud: 'aws', runtime: 'nodejs10.x', deprecatedOn: '2021-07-30' },
  { cloud: 'aws', runtime: 'nodejs12.x', deprecatedOn: '2023-03-31' },
  { cloud: 'aws', runtime: 'nodejs14.x', deprecatedOn: '2024-01-09' },
  { cloud: 'aws', runtime: 'nodejs16.x', deprecatedOn: '2024-06-12' },
  { cloud: 'aws', runtime: 'nodejs18.x', deprecatedOn: '2025-09-01' },
  { cloud: 'aws', runtime: 'nodejs20.x', deprecatedOn: '2026-04-30' },
  { cloud: 'google', runtime: 'nodejs10', deprecatedOn: '2024-01-30' },
  { cloud: 'google', runtime: 'nodejs12', deprecatedOn: '2025-01-30' },
  { cloud: 'google', runtime: 'nodejs14', deprecatedOn: '2025-01-30' },
  { cloud: 'google', runtime: 'nodejs16', deprecatedOn: '2025-01-30' },
  { cloud: 'google', runtime: 'nodejs18', deprecatedOn: '2025-04-30' },
  { cloud: 'google', runtime: 'nodejs20', deprecatedOn: '2026-04-30' },
];

/** The deprecation of `runtime`, when it is deprecated. */
export function runtimeDeprecation(runtime: string): DeprecatedRuntime | undefined {
  return DEPRECATED_RUNTIMES.find((r) => r.runtime === runtime);
}

/** The Node.js majors this release deploys functions on. */
export const SUPPORTED_NODE_MAJORS = [22, 24] as const;
