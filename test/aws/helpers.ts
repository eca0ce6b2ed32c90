import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll } from '@jest/globals';
import { BackupSource } from '../../lib';

// Each synth writes a cloud assembly, with its staged assets (the runner bundle, the Lambda), to
// a temporary cdk.out directory that aws-cdk-lib removes at process exit. Under jest that exit
// is the worker's, which must end within 500 ms: removing every test file's assemblies then
// overran it, the worker was force-exited ("failed to exit gracefully") and the directories
// stayed in /tmp. Remove this file's once its tests are done (aws-cdk-lib's own advice).
afterAll(() => CloudAssembly.cleanupTemporaryDirectories());

/** A fresh stack in a fresh app, with a fixed environment so ARNs and AZs are stable. */
export function newStack(id = 'Test'): Stack {
  const app = new App();
  return new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });
}

/** A VPC with public and private-with-egress subnets. */
export function newVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
}

export function newSecret(stack: Stack, id = 'Secret'): secretsmanager.Secret {
  return new secretsmanager.Secret(stack, id, {
    generateSecretString: { secretStringTemplate: '{"username":"backup"}', generateStringKey: 'password' },
  });
}

export function postgresSource(stack: Stack): BackupSource {
  return BackupSource.postgres({
    endpoint: 'db.internal',
    databaseName: 'app',
    username: 'backup',
    secret: newSecret(stack),
  });
}

/** Resources of one type, as [logicalId, resource] pairs. */
export function resourcesOf(
  template: Template,
  type: string,
): [string, { Properties: Record<string, any>; [k: string]: any }][] {
  return Object.entries(template.findResources(type)) as any;
}

/**
 * The template with the content hashes of staged assets masked, so a snapshot does not change
 * each time the runner or the verification function is rebuilt by someone else.
 */
export function normalizedTemplate(template: Template): unknown {
  const text = JSON.stringify(template.toJSON());
  return JSON.parse(text.replace(/[0-9a-f]{64}/g, '<asset-hash>'));
}
