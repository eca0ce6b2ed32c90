import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Construct } from 'constructs';
import { bundledAsset, ConfigError, timeoutEntryPoint as coreTimeoutEntryPoint, validateFargateSize } from '../../core';
import { acknowledge, acknowledgeInlinePolicies } from './nag';

/** Container names and the runner's path live once in lib/core (the CDKTF tasks use them too). */
export { DRILL_DATABASE_CONTAINER_NAME, RUNNER_CONTAINER as RUNNER_CONTAINER_NAME, RUNNER_SCRIPT } from '../../core';

const RUNNER_IMAGE_ID = 'DbBackupRunnerImage';

/**
 * The runner image built from `runner/Dockerfile` at deploy time (synth only stages it): one
 * image asset per stack, however many tasks run it.
 */
export function bundledRunnerImage(scope: Construct): ecs.ContainerImage {
  const stack = Stack.of(scope);
  const asset =
    (stack.node.tryFindChild(RUNNER_IMAGE_ID) as DockerImageAsset | undefined) ??
    new DockerImageAsset(stack, RUNNER_IMAGE_ID, {
      directory: bundledAsset('runner'),
      platform: Platform.LINUX_AMD64,
      exclude: ['demo.js'],
    });
  return ecs.ContainerImage.fromDockerImageAsset(asset);
}

/** The container's entry point: the runner under coreutils `timeout` (lib/core, as in CDKTF). */
export type { SharedTaskParts } from '../shared-task-parts';

export function timeoutEntryPoint(timeout: Duration): string[] {
  return coreTimeoutEntryPoint(timeout.toSeconds());
}

/** Check a timeout: whole minutes, 5 minutes to 7 days. */
export function checkTimeout(name: string, timeout: Duration): void {
  if (Token.isUnresolved(timeout.toString())) {
    throw new ConfigError(`${name} is an unresolved token; give a literal Duration such as Duration.hours(4).`);
  }
  const minutes = timeout.toMinutes({ integral: false });
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 7 * 24 * 60) {
    throw new ConfigError(
      `${name} is ${timeout.toHumanString()}; use whole minutes from 5 minutes to 7 days, e.g. Duration.hours(4).`,
    );
  }
}

/** Check Fargate cpu/memory against the one size table (lib/core/sizing); tokens are skipped. */
export function checkFargateSize(cpu: number, memoryLimitMiB: number): void {
  if (Token.isUnresolved(cpu) || Token.isUnresolved(memoryLimitMiB)) return;
  validateFargateSize(cpu, memoryLimitMiB);
}

/** A log group for a task, with retention and, when given, a KMS key. */
export function taskLogGroup(
  scope: Construct,
  id: string,
  retention: logs.RetentionDays,
  key: kms.IKey | undefined,
): logs.LogGroup {
  const group = new logs.LogGroup(scope, id, {
    retention,
    encryptionKey: key,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  return group;
}

/** The acknowledgements every runner task definition carries. */
export function acknowledgeTaskDefinition(taskDefinition: ecs.TaskDefinition): void {
  acknowledgeInlinePolicies(taskDefinition);
  if (taskDefinition.executionRole !== undefined) {
    acknowledge(taskDefinition.executionRole, {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, which the execution role needs to pull the runner image, takes no resource (ECR permissions reference).',
    });
  }
  acknowledge(taskDefinition, {
    id: 'AwsSolutions-ECS2',
    reason:
      "The environment holds only the runner's non-secret settings (engine, source URL without password, storage URL, options), rendered from the runner contract; the password comes through ECS secrets from Secrets Manager.",
  });
}
