import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { BackupFleet, BackupSource, DatabaseBackup, Retention } from '../../lib';

/** Properties of the fleet example. */
export interface FleetExampleStackProps extends StackProps {
  /** How many databases the fleet backs up. */
  readonly size: number;
}

/**
 * A fleet: one vault, verifier, alarm topic, cluster and dashboard, and `size` PostgreSQL
 * databases (stand-ins `db-1` … `db-N`), each backed up nightly and drilled weekly.
 */
export class FleetExampleStack extends Stack {
  public readonly fleet: BackupFleet;
  public readonly backups: DatabaseBackup[] = [];

  constructor(scope: Construct, id: string, props: FleetExampleStackProps) {
    super(scope, id, props);
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 1,
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    // One secret for the whole example: in a real fleet each database has its own.
    const secret = new secretsmanager.Secret(this, 'DatabaseSecret', {
      description: 'Password of the backup user of the example databases',
      generateSecretString: {
        secretStringTemplate: '{"username":"backup"}',
        generateStringKey: 'password',
        excludePunctuation: true,
      },
    });
    this.fleet = new BackupFleet(this, 'Fleet', {
      vpc,
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      alarmEmails: ['oncall@example.com'],
    });
    for (let i = 1; i <= props.size; i++) {
      this.backups.push(
        new DatabaseBackup(this, `Db${i}`, {
          fleet: this.fleet,
          databaseId: `db-${i}`,
          source: BackupSource.postgres({
            endpoint: `db-${i}.internal.example.com`,
            databaseName: 'app',
            username: 'backup',
            secret,
          }),
        }),
      );
    }
  }
}

/** FLEET_SIZE from the environment: a whole number from 1 to 200, default 3. */
export function fleetSize(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FLEET_SIZE?.trim();
  if (raw === undefined || raw === '') return 3;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 200) {
    throw new Error(`FLEET_SIZE is '${raw}'; give a whole number of databases from 1 to 200, e.g. FLEET_SIZE=35.`);
  }
  return n;
}
