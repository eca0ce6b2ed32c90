import { Duration, Stack, TimeZone, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  awsCronExpression,
  ConfigError,
  longestScheduleGapMinutes,
  parseCron,
  type CronOptions,
  type CronSpec,
} from '../core';
import { acknowledge, acknowledgeInlinePolicies } from './private/nag';

/** Options of `BackupSchedule.cron`. */
export interface BackupCronOptions extends CronOptions {
  /**
   * The time zone the cron fields are read in (EventBridge Scheduler handles daylight saving).
   * @default TimeZone.ETC_UTC
   */
  readonly timeZone?: TimeZone;
}

/**
 * When a task runs: a cron pattern or a fixed rate, checked when it is made.
 *
 * ```ts
 * BackupSchedule.cron({ hour: '3', minute: '15' })              // nightly at 03:15 UTC
 * BackupSchedule.cron({ weekDay: 'SUN', hour: '4', timeZone: TimeZone.EUROPE_BERLIN })
 * BackupSchedule.rate(Duration.hours(1))
 * ```
 */
export class BackupSchedule {
  /** Run on a cron pattern (EventBridge Scheduler syntax; `weekDay` 1 = Sunday or `MON`-`SUN`). */
  public static cron(options: BackupCronOptions): BackupSchedule {
    const fields = [options.minute, options.hour, options.day, options.month, options.weekDay];
    if (fields.some((f) => f !== undefined && Token.isUnresolved(f))) {
      throw new ConfigError(
        'BackupSchedule.cron: a cron field is an unresolved token; give the fields as literal strings.',
      );
    }
    let spec: CronSpec;
    try {
      spec = parseCron(options);
    } catch (e) {
      throw new ConfigError(`BackupSchedule.cron: ${(e as Error).message}`);
    }
    // Five calendar years, day patterns included: month lengths, leap days and weekday patterns all occur.
    const max = longestScheduleGapMinutes([spec], { years: 5, dayPatterns: true });
    if (max === undefined) {
      throw new ConfigError(
        `BackupSchedule.cron: the pattern '${awsCronExpression(spec)}' never fires (no date matches its day, month ` +
          'and weekDay); fix the day/month/weekDay fields.',
      );
    }
    const slack =
      options.timeZone !== undefined &&
      options.timeZone.timezoneName !== 'Etc/UTC' &&
      options.timeZone.timezoneName !== 'UTC'
        ? 60
        : 0;
    return new BackupSchedule(
      awsCronExpression(spec),
      options.timeZone,
      Duration.minutes(Math.max(1, spec.minIntervalMinutes - slack)),
      Duration.minutes(max + slack),
      spec,
    );
  }

  /** Run every `interval` (whole minutes, at least one minute). */
  public static rate(interval: Duration): BackupSchedule {
    if (Token.isUnresolved(interval.toString())) {
      return new BackupSchedule(`rate(${interval.toMinutes()} minutes)`);
    }
    const minutes = interval.toMinutes({ integral: false });
    if (!Number.isInteger(minutes) || minutes < 1) {
      throw new ConfigError(
        `BackupSchedule.rate: the interval ${interval.toHumanString()} is not a whole number of minutes, at least 1; ` +
          'use e.g. Duration.hours(1).',
      );
    }
    const expression =
      minutes % 1440 === 0
        ? `rate(${minutes / 1440} ${minutes === 1440 ? 'day' : 'days'})`
        : minutes % 60 === 0
          ? `rate(${minutes / 60} ${minutes === 60 ? 'hour' : 'hours'})`
          : `rate(${minutes} ${minutes === 1 ? 'minute' : 'minutes'})`;
    return new BackupSchedule(expression, undefined, interval, interval);
  }

  private constructor(
    /** The EventBridge Scheduler expression: `cron(…)` or `rate(…)`. */
    public readonly expressionString: string,
    /** The time zone of a cron schedule. */
    public readonly timeZone?: TimeZone,
    /** The shortest time between two runs, when known. */
    public readonly minInterval?: Duration,
    /** The longest time between two runs, when known. */
    public readonly maxInterval?: Duration,
    /** The checked cron fields of a cron schedule. */
    public readonly cronSpec?: CronSpec,
  ) {}
}

/** Properties of a `TaskSchedule`. */
export interface TaskScheduleProps {
  /** When to run the task. */
  readonly schedule: BackupSchedule;
  /** The cluster to run the task in. */
  readonly cluster: ecs.ICluster;
  /** The Fargate task definition to run. */
  readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The subnets of the task's network interface (in the cluster's VPC). */
  readonly subnets: ec2.SelectedSubnets;
  /** The security groups of the task. */
  readonly securityGroups: ec2.ISecurityGroup[];
  /**
   * Let EventBridge Scheduler start the task anywhere inside this window after the scheduled
   * time, to spread load.
   * @default - off: the task starts at the scheduled time
   */
  readonly flexibleWindow?: Duration;
  /**
   * How often EventBridge Scheduler retries a RunTask call that failed (throttling, no Fargate
   * capacity). It does not retry a task that started and then failed.
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * How long EventBridge Scheduler keeps retrying a run before giving up.
   * @default Duration.hours(1)
   */
  readonly maximumEventAge?: Duration;
  /**
   * Where runs that could not be started end up.
   * @default - a new SQS queue with SSE, kept 14 days
   */
  readonly deadLetterQueue?: sqs.IQueue;
  /** @default true */
  readonly enabled?: boolean;
  /** @default - none */
  readonly description?: string;
  /**
   * A role shared by several schedules (a `BackupFleet`'s), already allowed to run the task
   * definition, pass its roles and send to the dead-letter queue; nothing is added to it.
   * @default - a new role that can run only this task definition in this cluster
   */
  readonly role?: iam.IRole;
}

/**
 * An EventBridge Scheduler schedule that runs a Fargate task (ECS RunTask), with a retry policy,
 * a dead-letter queue and its own role that can run only this task definition in this cluster.
 */
export class TaskSchedule extends Construct {
  /** The EventBridge Scheduler schedule. */
  public readonly resource: scheduler.CfnSchedule;
  /** The role EventBridge Scheduler assumes to run the task. */
  public readonly role: iam.IRole;
  /** Where runs that could not be started end up. */
  public readonly deadLetterQueue: sqs.IQueue;

  constructor(scope: Construct, id: string, props: TaskScheduleProps) {
    super(scope, id);
    const retryAttempts = props.retryAttempts ?? 3;
    if (
      !Token.isUnresolved(retryAttempts) &&
      (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 185)
    ) {
      throw new ConfigError(
        `retryAttempts is ${retryAttempts}; EventBridge Scheduler takes a whole number from 0 to 185.`,
      );
    }
    const maxAge = props.maximumEventAge ?? Duration.hours(1);
    if (!Token.isUnresolved(maxAge.toString()) && (maxAge.toSeconds() < 60 || maxAge.toSeconds() > 86400)) {
      throw new ConfigError(
        `maximumEventAge is ${maxAge.toHumanString()}; EventBridge Scheduler takes 1 minute to 24 hours.`,
      );
    }
    if (props.securityGroups.length === 0) {
      throw new ConfigError(
        'securityGroups is empty; a Fargate task needs at least one security group (e.g. one that allows HTTPS out).',
      );
    }
    const windowMinutes = props.flexibleWindow?.toMinutes();
    if (
      windowMinutes !== undefined &&
      !Token.isUnresolved(windowMinutes) &&
      (windowMinutes < 1 || windowMinutes > 1440)
    ) {
      throw new ConfigError(
        `flexibleWindow is ${props.flexibleWindow!.toHumanString()}; use 1 minute to 24 hours, or leave it out for ` +
          'an exact start.',
      );
    }

    this.deadLetterQueue =
      props.deadLetterQueue ??
      new sqs.Queue(this, 'DeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    if (props.deadLetterQueue === undefined) {
      acknowledge(this.deadLetterQueue, {
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself the dead-letter queue of an EventBridge Scheduler schedule.',
      });
    }

    if (props.role !== undefined) {
      this.role = props.role;
    } else {
      const role = new iam.Role(this, 'Role', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
        description: 'Lets EventBridge Scheduler run one backup task definition',
      });
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecs:RunTask'],
          resources: [props.taskDefinition.taskDefinitionArn],
          conditions: { ArnEquals: { 'ecs:cluster': props.cluster.clusterArn } },
        }),
      );
      const passRoles = [props.taskDefinition.taskRole, props.taskDefinition.executionRole].filter(
        (r): r is iam.IRole => r !== undefined,
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['iam:PassRole'],
          resources: passRoles.map((r) => r.roleArn),
          conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        }),
      );
      this.deadLetterQueue.grantSendMessages(role);
      acknowledgeInlinePolicies(role);
      this.role = role;
    }

    this.resource = new scheduler.CfnSchedule(this, 'Resource', {
      description: props.description,
      scheduleExpression: props.schedule.expressionString,
      scheduleExpressionTimezone: props.schedule.timeZone?.timezoneName ?? 'Etc/UTC',
      state: props.enabled === false ? 'DISABLED' : 'ENABLED',
      flexibleTimeWindow:
        props.flexibleWindow === undefined
          ? { mode: 'OFF' }
          : { mode: 'FLEXIBLE', maximumWindowInMinutes: windowMinutes },
      target: {
        arn: props.cluster.clusterArn,
        roleArn: this.role.roleArn,
        deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
        retryPolicy: { maximumRetryAttempts: retryAttempts, maximumEventAgeInSeconds: maxAge.toSeconds() },
        ecsParameters: {
          taskDefinitionArn: props.taskDefinition.taskDefinitionArn,
          launchType: 'FARGATE',
          platformVersion: 'LATEST',
          taskCount: 1,
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: props.subnets.subnetIds,
              securityGroups: props.securityGroups.map((sg) => sg.securityGroupId),
              assignPublicIp: 'DISABLED',
            },
          },
        },
      },
    });
    // Start scheduling only once the role may run the task (its policy exists). The role itself
    // is already a dependency through RoleArn.
    const policy = this.role.node.tryFindChild('DefaultPolicy');
    if (policy !== undefined) this.resource.node.addDependency(policy);
  }
}
