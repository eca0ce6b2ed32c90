import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';

/** What a fleet shares between the tasks of its databases (see `BackupFleet`). */
export interface SharedTaskParts {
  /** The task role, made by the caller (in a fleet: under the fleet's role path). */
  readonly taskRole: iam.IRole;
  /** The one execution role of the fleet. */
  readonly executionRole: iam.IRole;
  /** The one log group of the fleet; streams are prefixed with the database id. */
  readonly logGroup: logs.ILogGroup;
  /** The task definition's family (in a fleet: under the fleet's family prefix). */
  readonly family: string;
}
