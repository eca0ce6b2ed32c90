import { Construct } from 'constructs';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { SchedulerSchedule } from '@cdktf/provider-aws/lib/scheduler-schedule';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { ConfigError } from '../../core';
import { Duration } from '../common/duration';
import { boundedName } from '../common/names';
import { BackupSchedule } from '../common/schedule';
import { awsContext } from './private/context';
import { serviceRole } from './private/role';
import { IRoleRef, ITaskDefinitionRef } from './refs';

/** What a schedule starts: a Fargate task definition with its roles and network. */
export interface IScheduledTask {
  readonly databaseId: string;
  readonly taskDefinition: ITaskDefinitionRef;
  readonly taskRole: IRoleRef;
  readonly executionRole: IRoleRef;
  readonly clusterArn: string;
  readonly subnetIds: string[];
  readonly securityGroupIds: string[];
  readonly assignPublicIp: boolean;
}

/** Properties of a `TaskSchedule`. */
export interface TaskScheduleProps {
  /** The task to run (a `BackupRunnerTask` or a `RestoreDrillTask`). */
  readonly task: IScheduledTask;
  /** When to run the task; each becomes one EventBridge Scheduler schedule. */
  readonly schedules: BackupSchedule[];
  /**
   * How often EventBridge Scheduler retries a RunTask call that failed (e.g. no Fargate
   * capacity, throttling) before it sends the event to the dead-letter queue. A task that
   * started and then failed is not retried: its `BackupFailed` metric raises the alarm.
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * How long a run may be late before it is dropped to the dead-letter queue instead.
   * @default Duration.hours(1)
   */
  readonly maximumEventAge?: Duration;
  /**
   * Create the schedules disabled (e.g. while the image is not pushed yet).
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * What the runs are, in names and descriptions (`backup`, `incremental`, `drill`).
   * @default 'backup'
   */
  readonly purpose?: string;
  /**
   * The dead-letter queue for runs that could not be started (one queue may serve several schedules).
   * @default - a new SQS queue with SSE, kept 14 days
   */
  readonly deadLetterQueue?: SqsQueue;
}

/**
 * EventBridge Scheduler schedules that run the runner task on Fargate, with a retry policy, a
 * dead-letter queue for runs that could not be started, and a role that may start only this
 * task definition in this cluster.
 */
export class TaskSchedule extends Construct {
  public readonly schedules: SchedulerSchedule[];
  public readonly deadLetterQueue: SqsQueue;
  public readonly role: IamRole;

  constructor(scope: Construct, id: string, props: TaskScheduleProps) {
    super(scope, id);
    const ctx = awsContext(this);
    const task = props.task;
    if (props.schedules.length === 0) throw new ConfigError('schedules is empty; give at least one, e.g. BackupSchedule.daily(2).');
    const retries = props.retryAttempts ?? 3;
    if (!Number.isInteger(retries) || retries < 0 || retries > 185) {
      throw new ConfigError(`retryAttempts is ${retries}; EventBridge Scheduler takes a whole number from 0 to 185.`);
    }
    const age = (props.maximumEventAge ?? Duration.hours(1)).toSeconds();
    if (age < 60 || age > 86400) throw new ConfigError(`maximumEventAge is ${age} seconds; EventBridge Scheduler takes 60 seconds to 24 hours.`);
    const purpose = props.purpose ?? 'backup';
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', task.databaseId, suffix], max);

    this.deadLetterQueue =
      props.deadLetterQueue ??
      new SqsQueue(this, 'DeadLetterQueue', {
        name: name(purpose === 'backup' ? 'schedule-dlq' : `${purpose}-dlq`, 80),
        messageRetentionSeconds: 14 * 86400,
        sqsManagedSseEnabled: true,
      });

    const taskDefinitions = `${task.taskDefinition.arnWithoutRevision}:*`;
    this.role = serviceRole(this, 'Role', {
      name: name(purpose === 'backup' ? 'scheduler' : `${purpose}-scheduler`),
      description: `Starts the dbbackup ${purpose} task of ${task.databaseId} on its schedule`,
      service: 'scheduler.amazonaws.com',
      sourceAccount: ctx.accountId,
      statements: [
        {
          Sid: 'RunBackupTask',
          Effect: 'Allow',
          Action: 'ecs:RunTask',
          Resource: taskDefinitions,
          Condition: { ArnEquals: { 'ecs:cluster': task.clusterArn } },
        },
        {
          Sid: 'TagBackupTask',
          Effect: 'Allow',
          Action: 'ecs:TagResource',
          Resource: `arn:${ctx.partition}:ecs:${ctx.region}:${ctx.accountId}:task/*`,
          Condition: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
        },
        {
          Sid: 'PassTaskRoles',
          Effect: 'Allow',
          Action: 'iam:PassRole',
          Resource: [task.executionRole.arn, task.taskRole.arn],
          Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        },
        { Sid: 'DeadLetter', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: this.deadLetterQueue.arn },
      ],
    }).role;

    this.schedules = props.schedules.map(
      (s, i) =>
        new SchedulerSchedule(this, props.schedules.length === 1 ? 'Resource' : `Schedule${i + 1}`, {
          name: name(props.schedules.length === 1 ? purpose : `${purpose}-${i + 1}`),
          description: `dbbackup: ${purpose} of ${task.databaseId} (${s.awsExpression} ${s.timeZone})`,
          scheduleExpression: s.awsExpression,
          scheduleExpressionTimezone: s.timeZone,
          state: props.enabled === false ? 'DISABLED' : 'ENABLED',
          flexibleTimeWindow: { mode: 'OFF' },
          target: {
            arn: task.clusterArn,
            roleArn: this.role.arn,
            ecsParameters: {
              taskDefinitionArn: task.taskDefinition.arn,
              launchType: 'FARGATE',
              platformVersion: 'LATEST',
              taskCount: 1,
              enableEcsManagedTags: true,
              propagateTags: 'TASK_DEFINITION',
              networkConfiguration: {
                subnets: task.subnetIds,
                securityGroups: task.securityGroupIds,
                assignPublicIp: task.assignPublicIp,
              },
            },
            retryPolicy: { maximumRetryAttempts: retries, maximumEventAgeInSeconds: age },
            deadLetterConfig: { arn: this.deadLetterQueue.arn },
          },
        }),
    );
  }
}

/** @deprecated renamed `TaskSchedule`, the AWS CDK flavour's name. */
export class RunnerSchedule extends TaskSchedule {}
/** @deprecated renamed `TaskScheduleProps`. */
export interface RunnerScheduleProps extends TaskScheduleProps {}
