import * as assert from 'node:assert/strict';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll } from '@jest/globals';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { BackupSource, type DatabaseEndpointOptions } from '../../lib';

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

/**
 * A self-managed source's options: `backup@db.internal`, database `app`, a new secret; `extra`
 * replaces or adds any of them (`BackupSource.mariadb(endpointOptions(stack, { method }))`).
 */
export function endpointOptions(stack: Stack, extra: Partial<DatabaseEndpointOptions> = {}): DatabaseEndpointOptions {
  return { endpoint: 'db.internal', databaseName: 'app', username: 'backup', secret: newSecret(stack), ...extra };
}

export function postgresSource(stack: Stack): BackupSource {
  return BackupSource.postgres(endpointOptions(stack));
}

/**
 * Fail unless cdk-nag's AwsSolutions and NIST 800-53 rev 5 packs report nothing unacknowledged
 * under `pathPrefix` (the construct under test: the test's own VPC and secret are fixtures).
 */
export function assertNagClean(scope: IConstruct, pathPrefix: string): void {
  for (const pack of [new AwsSolutionsChecks(), new NIST80053R5Checks()]) {
    const found = pack
      .validateScope(scope)
      .violations.flatMap((v) =>
        v.violatingResources
          .filter((r) => (r.constructPath ?? '').startsWith(pathPrefix))
          .map((r) => `${v.ruleName} at ${r.constructPath}`),
      );
    assert.deepEqual(found, [], `${pack.readPackName} reports:\n${found.join('\n')}`);
  }
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
