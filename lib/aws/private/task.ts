import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Construct } from 'constructs';
import { bundledAsset, ConfigError } from '../../core';
import { acknowledge, acknowledgeInlinePolicies } from './nag';

/** The name of the runner's container in every task definition of this library. */
export const RUNNER_CONTAINER_NAME = 'runner';

/** The name of the scratch database's container in a drill task. */
export const DRILL_DATABASE_CONTAINER_NAME = 'database';

/** Where the bundled image keeps the runner. */
export const RUNNER_SCRIPT = '/opt/dbbackup/dbbackup.js';

/** The runner image built from `runner/Dockerfile` at deploy time (synth only stages it). */
export function bundledRunnerImage(): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(bundledAsset('runner'), {
    platform: Platform.LINUX_AMD64,
    exclude: ['demo.js'],
  });
}

/**
 * The container's entry point: the runner under coreutils `timeout`, which sends SIGTERM when
 * the time is up (exit 124) and SIGKILL a minute later. Fargate itself has no task timeout.
 */
export function timeoutEntryPoint(timeout: Duration): string[] {
  return ['timeout', '--signal=TERM', '--kill-after=60', String(timeout.toSeconds()), 'node', RUNNER_SCRIPT];
}

/** Check a timeout: whole minutes, 5 minutes to 7 days. */
export function checkTimeout(name: string, timeout: Duration): void {
  if (Token.isUnresolved(timeout.toString())) {
    throw new ConfigError(`${name} is an unresolved token; give a literal Duration such as Duration.hours(4).`);
  }
  const minutes = timeout.toMinutes({ integral: false });
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 7 * 24 * 60) {
    throw new ConfigError(`${name} is ${timeout.toHumanString()}; use whole minutes from 5 minutes to 7 days, e.g. Duration.hours(4).`);
  }
}

/** Check Fargate cpu/memory: a valid combination. */
export function checkFargateSize(cpu: number, memoryLimitMiB: number): void {
  if (Token.isUnresolved(cpu) || Token.isUnresolved(memoryLimitMiB)) return;
  const ranges: Record<number, [number, number, number]> = {
    256: [512, 2048, 1024],
    512: [1024, 4096, 1024],
    1024: [2048, 8192, 1024],
    2048: [4096, 16384, 1024],
    4096: [8192, 30720, 1024],
    8192: [16384, 61440, 4096],
    16384: [32768, 122880, 8192],
  };
  const r = ranges[cpu];
  if (r === undefined) {
    throw new ConfigError(`cpu ${cpu} is not a Fargate size; use 256, 512, 1024, 2048, 4096, 8192 or 16384 (1024 = 1 vCPU).`);
  }
  const [lo, hi, step] = r;
  const ok = (cpu === 256 && memoryLimitMiB === 512) || (memoryLimitMiB >= lo && memoryLimitMiB <= hi && memoryLimitMiB % step === 0);
  if (!ok) {
    throw new ConfigError(`memoryLimitMiB ${memoryLimitMiB} does not go with cpu ${cpu} on Fargate; use ${lo} to ${hi} MiB in steps of ${step}.`);
  }
}

/** A log group for a task, with retention and, when given, a KMS key. */
export function taskLogGroup(scope: Construct, id: string, retention: logs.RetentionDays, key: kms.IKey | undefined): logs.LogGroup {
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
      reason: 'ecr:GetAuthorizationToken, which the execution role needs to pull the runner image, takes no resource (ECR permissions reference).',
    });
  }
  acknowledge(taskDefinition, {
    id: 'AwsSolutions-ECS2',
    reason:
      'The environment holds only the runner\'s non-secret settings (engine, source URL without password, storage URL, options), rendered from the runner contract; the password comes through ECS secrets from Secrets Manager.',
  });
}
