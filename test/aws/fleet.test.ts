import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { FleetExampleStack, fleetSize } from '../../examples/fleet/fleet-stack';
import { BackupFleet, BackupSource, DatabaseBackup } from '../../lib';
import { newSecret, newStack, newVpc } from './helpers';

const env = { account: '123456789012', region: 'eu-west-1' };

function fleetTemplate(size: number): Template {
  const app = new App({ context: { '@aws-cdk/aws-iam:minimizePolicies': true } });
  return Template.fromStack(new FleetExampleStack(app, 'Fleet', { size, env }));
}

function resourceCount(t: Template): number {
  return Object.keys(t.toJSON().Resources).length;
}

function source(stack: Stack, n: number): BackupSource {
  return BackupSource.postgres({
    endpoint: `db-${n}.internal`,
    databaseName: 'app',
    username: 'backup',
    secret: newSecret(stack, `Secret${n}`),
  });
}

describe('fleet mode', () => {
  const counts = new Map<number, number>();
  for (const n of [1, 2, 5]) counts.set(n, resourceCount(fleetTemplate(n)));

  test('each extra database costs at most 12 resources (measured for 1, 2 and 5 databases)', () => {
    const one = counts.get(1)!;
    const two = counts.get(2)!;
    const five = counts.get(5)!;
    assert.ok(two - one <= 12, `1 → 2 databases added ${two - one} resources`);
    assert.ok((five - one) / 4 <= 12, `1 → 5 databases added ${(five - one) / 4} resources per database`);
    assert.ok(two > one, 'a second database added nothing, so the count measures nothing');
  });

  test('35 databases synthesize in one stack under 500 resources', () => {
    const total = resourceCount(fleetTemplate(35));
    assert.ok(total < 500, `35 databases: ${total} resources`);
  });

  test(
    'what is per fleet is made once: verifier, queues, topic, ' +
      'cluster, dashboard, execution and scheduler roles, image',
    () => {
      const app = new App();
      const stack = new FleetExampleStack(app, 'Fleet', { size: 3, env });
      const t = Template.fromStack(stack);
      t.resourceCountIs('AWS::Lambda::Function', 1);
      t.resourceCountIs('AWS::SQS::Queue', 2); // the schedules' and the verifier's dead-letter queues
      t.resourceCountIs('AWS::SNS::Topic', 1);
      t.resourceCountIs('AWS::ECS::Cluster', 1);
      t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      t.resourceCountIs('AWS::Logs::LogGroup', 2); // the tasks' and the verifier's
      t.resourceCountIs('AWS::ECS::TaskDefinition', 6);
      // One image asset for the stack, used by every task definition.
      const images = new Set<string>();
      for (const td of Object.values(t.findResources('AWS::ECS::TaskDefinition'))) {
        const runner = td.Properties.ContainerDefinitions.find((c: { Name: string }) => c.Name === 'runner');
        images.add(JSON.stringify(runner.Image));
        assert.equal(
          JSON.stringify(td.Properties.ExecutionRoleArn),
          JSON.stringify(stack.resolve(stack.fleet.executionRole.roleArn)),
        );
      }
      assert.equal(images.size, 1, `runner images: ${[...images].join(', ')}`);
      const manifest = JSON.parse(fs.readFileSync(path.join(app.synth().directory, 'Fleet.assets.json'), 'utf8'));
      assert.equal(Object.keys(manifest.dockerImages ?? {}).length, 1);
      // The dashboard has a row per database.
      const body = JSON.stringify(
        stack.resolve(Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody),
      );
      for (const db of ['db-1', 'db-2', 'db-3']) assert.ok(body.includes(`${db}: RPO`), `no dashboard row for ${db}`);
    },
  );

  test('the fleet alarms on a non-empty dead-letter queue and on verifier errors and throttles', () => {
    const t = fleetTemplate(1);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
      AlarmActions: Match.anyValue(),
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Namespace: 'AWS/Lambda' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Throttles', Namespace: 'AWS/Lambda' });
    const queueAlarms = Object.values(
      t.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'ApproximateNumberOfMessagesVisible' } }),
    );
    assert.equal(queueAlarms.length, 2);
  });

  test('two backups with the same database id in one fleet fail at synth, naming both', () => {
    const stack = newStack();
    const fleet = new BackupFleet(stack, 'Fleet', { vpc: newVpc(stack) });
    new DatabaseBackup(stack, 'Orders', { fleet, databaseId: 'orders', source: source(stack, 1) });
    assert.throws(
      () => new DatabaseBackup(stack, 'OrdersAgain', { fleet, databaseId: 'orders', source: source(stack, 2) }),
      /databaseId 'orders' of Test\/OrdersAgain is already used by Test\/Orders/,
    );
  });

  test('overlapping prefixes in one fleet fail at synth, naming both', () => {
    const stack = newStack();
    const fleet = new BackupFleet(stack, 'Fleet', { vpc: newVpc(stack) });
    new DatabaseBackup(stack, 'Shop', { fleet, databaseId: 'shop', prefix: 'shop', source: source(stack, 1) });
    assert.throws(
      () =>
        new DatabaseBackup(stack, 'ShopOrders', {
          fleet,
          databaseId: 'shop-orders',
          prefix: 'shop/orders',
          source: source(stack, 2),
        }),
      /prefix 'shop\/orders' of Test\/ShopOrders overlaps the prefix 'shop' of Test\/Shop/,
    );
  });

  test("a fleet member needs an explicit databaseId and leaves the fleet's props to the fleet", () => {
    const stack = newStack();
    const fleet = new BackupFleet(stack, 'Fleet', { vpc: newVpc(stack) });
    assert.throws(
      () => new DatabaseBackup(stack, 'Orders', { fleet, source: source(stack, 1) }),
      /databaseId is missing on Test\/Orders.*databaseId: 'orders'/,
    );
    assert.throws(
      () =>
        new DatabaseBackup(stack, 'Billing', {
          fleet,
          databaseId: 'billing',
          alarmEmails: ['a@example.com'],
          source: source(stack, 2),
        }),
      /alarmEmails is set on a DatabaseBackup that joins a fleet.*set alarmEmails on the BackupFleet/,
    );
  });

  test(
    "outside a fleet, a databaseId comes from the source's " +
      'database name; the warning names the earlier default to keep',
    () => {
      const stack = newStack();
      const b = new DatabaseBackup(stack, 'OrdersDb', { vpc: newVpc(stack), source: source(stack, 1) });
      assert.equal(b.databaseId, 'app');
      Annotations.fromStack(stack).hasWarning(
        '/Test/OrdersDb',
        Match.stringLikeRegexp("set databaseId: 'orders-db' to keep the backups under their prefix"),
      );
    },
  );

  test("the schedules of a fleet share one role that may run only the fleet's families and pass only its roles", () => {
    const t = fleetTemplate(2);
    const schedules = Object.values(t.findResources('AWS::Scheduler::Schedule'));
    const ecsTargets = schedules.filter((s) => s.Properties.Target.EcsParameters !== undefined);
    assert.equal(ecsTargets.length, 4);
    assert.equal(new Set(ecsTargets.map((s) => JSON.stringify(s.Properties.Target.RoleArn))).size, 1);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'ecs:RunTask', Resource: Match.objectLike({ 'Fn::Join': Match.anyValue() }) }),
        ]),
      },
    });
  });

  test('FLEET_SIZE: default 3, a whole number, bad values name the fix', () => {
    assert.equal(fleetSize({}), 3);
    assert.equal(fleetSize({ FLEET_SIZE: '35' }), 35);
    assert.throws(() => fleetSize({ FLEET_SIZE: 'many' }), /FLEET_SIZE is 'many'; give a whole number/);
    assert.throws(() => fleetSize({ FLEET_SIZE: '0' }), /FLEET_SIZE is '0'/);
  });
});
