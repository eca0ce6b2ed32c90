import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { BackupEncryption, DatabaseBackup } from '../../lib';
import { newStack, newVpc, postgresSource } from './helpers';

/** The actions the verifier's policy allows on `keyArn` (resolved). */
function actionsOn(t: Template, roleLogicalId: string, keyArn: unknown): string[] {
  const wanted = JSON.stringify(keyArn);
  const out: string[] = [];
  for (const p of Object.values(t.findResources('AWS::IAM::Policy'))) {
    if (!JSON.stringify(p.Properties.Roles).includes(roleLogicalId)) continue;
    for (const st of p.Properties.PolicyDocument.Statement) {
      const resources = [st.Resource].flat().map((r: unknown) => JSON.stringify(r));
      if (resources.includes(wanted)) out.push(...[st.Action].flat());
    }
  }
  return out;
}

describe("the verifier may unwrap a kms: backup's data key, so it checks the manifest's MAC", () => {
  test('with a wrapping key of its own (not the vault key), the verifier role gets kms:Decrypt on it', () => {
    const stack = newStack();
    const wrapping = new kms.Key(stack, 'Wrapping', { enableKeyRotation: true });
    const backup = new DatabaseBackup(stack, 'Orders', {
      databaseId: 'orders',
      vpc: newVpc(stack),
      source: postgresSource(stack),
      encryption: BackupEncryption.kms(wrapping),
    });
    const t = Template.fromStack(stack);
    const role = stack.getLogicalId(backup.verifier.role.node.defaultChild as any);
    assert.ok(actionsOn(t, role, stack.resolve(wrapping.keyArn)).includes('kms:Decrypt'));
  });
});

describe('a kms: database refuses manifests that are not kms: and authenticated', () => {
  /** The environment of the verifier function and of each task definition's container. */
  function environments(encryption: BackupEncryption | undefined) {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Orders', {
      databaseId: 'orders',
      vpc: newVpc(stack),
      source: postgresSource(stack),
      encryption,
    });
    const t = Template.fromStack(stack);
    const fn =
      t.findResources('AWS::Lambda::Function')[stack.getLogicalId(backup.verifier.function.node.defaultChild as any)];
    // The runner's container of each task definition (a drill's also runs its scratch database).
    const tasks = Object.values(t.findResources('AWS::ECS::TaskDefinition')).flatMap((td) =>
      td.Properties.ContainerDefinitions.map((c: { Environment?: { Name: string; Value: unknown }[] }) =>
        Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value])),
      ).filter((env: Record<string, unknown>) => env.DBBACKUP_JSON !== undefined),
    );
    return { verifier: fn.Properties.Environment.Variables, tasks };
  }

  test('kms: (the default): the verifier and the backup and drill tasks get DBBACKUP_REQUIRE_ENCRYPTION=kms', () => {
    const { verifier, tasks } = environments(undefined);
    assert.equal(verifier.DBBACKUP_REQUIRE_ENCRYPTION, 'kms');
    assert.ok(tasks.length >= 2, `${tasks.length} task definitions`);
    for (const env of tasks) assert.equal(env.DBBACKUP_REQUIRE_ENCRYPTION, 'kms', JSON.stringify(env));
  });

  test('no client-side encryption: nothing is required', () => {
    const { verifier, tasks } = environments(BackupEncryption.none());
    assert.equal(verifier.DBBACKUP_REQUIRE_ENCRYPTION, undefined);
    for (const env of tasks) assert.equal(env.DBBACKUP_REQUIRE_ENCRYPTION, undefined);
  });
});
