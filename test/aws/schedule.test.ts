import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration, TimeZone } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { BackupSchedule, TaskSchedule } from '../../lib';
import { newStack, newVpc } from './helpers';

describe('BackupSchedule', () => {
  test('cron renders the EventBridge Scheduler expression and knows its intervals', () => {
    const nightly = BackupSchedule.cron({ hour: '3', minute: '15' });
    assert.equal(nightly.expressionString, 'cron(15 3 * * ? *)');
    assert.equal(nightly.minInterval!.toMinutes(), 1440);
    assert.equal(nightly.maxInterval!.toMinutes(), 1440);
    const weekly = BackupSchedule.cron({ weekDay: 'SUN', hour: '4' });
    assert.equal(weekly.expressionString, 'cron(0 4 ? * SUN *)');
    assert.equal(weekly.maxInterval!.toDays(), 7);
    const monthly = BackupSchedule.cron({ day: '1', hour: '2' });
    assert.equal(monthly.maxInterval!.toDays(), 31);
    const twiceADay = BackupSchedule.cron({ hour: '0,6', minute: '0' });
    assert.equal(twiceADay.minInterval!.toHours(), 6);
    assert.equal(twiceADay.maxInterval!.toHours(), 18);
    const firstMonday = BackupSchedule.cron({ weekDay: 'MON#1', hour: '1' });
    assert.ok(firstMonday.maxInterval!.toDays() >= 35);
  });

  test('a time zone adds an hour of slack for daylight saving', () => {
    const s = BackupSchedule.cron({ hour: '3', timeZone: TimeZone.EUROPE_BERLIN });
    assert.equal(s.timeZone?.timezoneName, 'Europe/Berlin');
    assert.equal(s.maxInterval!.toMinutes(), 1500);
    assert.equal(s.minInterval!.toMinutes(), 1380);
  });

  test('rate renders minutes, hours and days', () => {
    assert.equal(BackupSchedule.rate(Duration.minutes(90)).expressionString, 'rate(90 minutes)');
    assert.equal(BackupSchedule.rate(Duration.hours(1)).expressionString, 'rate(1 hour)');
    assert.equal(BackupSchedule.rate(Duration.hours(12)).expressionString, 'rate(12 hours)');
    assert.equal(BackupSchedule.rate(Duration.days(2)).expressionString, 'rate(2 days)');
  });

  test('rejects invalid cron fields, a pattern that never fires and a sub-minute rate, naming the value', () => {
    assert.throws(
      () => BackupSchedule.cron({ hour: '25' }),
      /BackupSchedule.cron: cron hour '25' is not valid; use a number 0-23/,
    );
    assert.throws(() => BackupSchedule.cron({ day: '1', weekDay: 'MON' }), /both set; give one of them/);
    assert.throws(() => BackupSchedule.cron({ day: '31', month: '2' }), /never fires/);
    assert.throws(
      () => BackupSchedule.rate(Duration.seconds(30)),
      /the interval 30 seconds is not a whole number of minutes, at least 1/,
    );
  });
});

describe('TaskSchedule', () => {
  function setup() {
    const stack = newStack();
    const vpc = newVpc(stack);
    const cluster = new ecs.Cluster(stack, 'Cluster', { vpc });
    const taskDefinition = new ecs.FargateTaskDefinition(stack, 'Task');
    taskDefinition.addContainer('runner', { image: ecs.ContainerImage.fromRegistry('example/runner:1') });
    const sg = new ec2.SecurityGroup(stack, 'Sg', { vpc });
    return { stack, vpc, cluster, taskDefinition, sg };
  }

  test('an EventBridge Scheduler schedule running the Fargate task, with timezone, window, retries and a DLQ', () => {
    const { stack, vpc, cluster, taskDefinition, sg } = setup();
    new TaskSchedule(stack, 'Schedule', {
      schedule: BackupSchedule.cron({ hour: '2', minute: '30', timeZone: TimeZone.AMERICA_NEW_YORK }),
      cluster,
      taskDefinition,
      subnets: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }),
      securityGroups: [sg],
      flexibleWindow: Duration.minutes(10),
      retryAttempts: 5,
      maximumEventAge: Duration.hours(2),
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 2 * * ? *)',
      ScheduleExpressionTimezone: 'America/New_York',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 10 },
      Target: {
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Cluster'), 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ScheduleRole'), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ScheduleDeadLetterQueue'), 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 7200 },
        EcsParameters: {
          TaskDefinitionArn: { Ref: Match.stringLikeRegexp('^Task') },
          LaunchType: 'FARGATE',
          TaskCount: 1,
          NetworkConfiguration: {
            AwsvpcConfiguration: {
              AssignPublicIp: 'DISABLED',
              SecurityGroups: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Sg'), 'GroupId'] }],
            },
          },
        },
      },
    });
    t.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  });

  test(
    'its role is assumable by the scheduler of this account ' + 'only, and can run only this task in this cluster',
    () => {
      const { stack, vpc, cluster, taskDefinition, sg } = setup();
      new TaskSchedule(stack, 'Schedule', {
        schedule: BackupSchedule.rate(Duration.hours(6)),
        cluster,
        taskDefinition,
        subnets: vpc.selectSubnets(),
        securityGroups: [sg],
      });
      const t = Template.fromStack(stack);
      t.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [
            {
              Action: 'sts:AssumeRole',
              Effect: 'Allow',
              Principal: { Service: 'scheduler.amazonaws.com' },
              Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
            },
          ],
        },
      });
      t.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Action: 'ecs:RunTask',
              Effect: 'Allow',
              Resource: { Ref: Match.stringLikeRegexp('^Task') },
              Condition: {
                ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [Match.stringLikeRegexp('^Cluster'), 'Arn'] } },
              },
            },
            {
              Action: 'iam:PassRole',
              Effect: 'Allow',
              Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskTaskRole'), 'Arn'] },
              Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
            },
          ]),
        },
      });
      t.hasResourceProperties('AWS::Scheduler::Schedule', {
        ScheduleExpression: 'rate(6 hours)',
        FlexibleTimeWindow: { Mode: 'OFF' },
      });
    },
  );

  test('rejects retry and window values EventBridge Scheduler does not take', () => {
    const { stack, vpc, cluster, taskDefinition, sg } = setup();
    const base = {
      schedule: BackupSchedule.rate(Duration.hours(6)),
      cluster,
      taskDefinition,
      subnets: vpc.selectSubnets(),
      securityGroups: [sg],
    };
    assert.throws(
      () => new TaskSchedule(stack, 'A', { ...base, retryAttempts: 200 }),
      /retryAttempts is 200; EventBridge Scheduler takes a whole number from 0 to 185/,
    );
    assert.throws(
      () => new TaskSchedule(stack, 'B', { ...base, maximumEventAge: Duration.days(2) }),
      /maximumEventAge is 2 days; .*1 minute to 24 hours/,
    );
    assert.throws(() => new TaskSchedule(stack, 'D', { ...base, securityGroups: [] }), /securityGroups is empty/);
    assert.throws(
      () => new TaskSchedule(stack, 'C', { ...base, flexibleWindow: Duration.hours(25) }),
      /flexibleWindow is 1 day 1 hour; use 1 minute to 24 hours/,
    );
  });
});
