/**
 * The engine record and the codec table in lib/core are what the runner's parser, --help and
 * the constructs read: each answer below comes from the table, checked where it is used.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { CODECS, compressionOfExtension, DEFAULT_COMPRESSION } from '../lib/core/codecs';
import { RUNNER_OPTIONS } from '../lib/core/contract';
import {
  AWS_MANAGED_SERVICE,
  checkBackupTypes,
  checkBackupTypeSupported,
  defaultMethod,
  ENGINE_CAPABILITIES,
  GOOGLE_MANAGED_SERVICE,
} from '../lib/core/engines';
import { BackupMethod, BackupType, Compression, Engine } from '../lib/core/model';
import { HelpRequest, parseInvocation } from '../runner/src/config';
import { compressStage, decompressStage } from '../runner/src/pipeline/compress';

const STORAGE = ['--to', 'file:///tmp/x'];

describe('engine record', () => {
  test('every engine has a record, and its first method is the full backup default', () => {
    for (const engine of Object.values(Engine)) {
      const c = ENGINE_CAPABILITIES[engine];
      assert.ok(c.methods.length > 0 && c.types.includes(BackupType.FULL), engine);
      assert.equal(defaultMethod(engine, BackupType.FULL), c.methods[0]);
    }
    assert.equal(defaultMethod(Engine.POSTGRES, BackupType.INCREMENTAL), BackupMethod.PHYSICAL);
  });

  test('the runner refuses a method the record does not list and defaults to the record', () => {
    const mongo = ['backup', '--engine', 'mongodb', '--source', 'mongodb://u@h/app', ...STORAGE];
    assert.throws(
      () => parseInvocation([...mongo, '--method', 'physical'], {}),
      /--method physical is not available for engine 'mongodb'; it takes --method logical/,
    );
    const mysql = ['backup', '--engine', 'mysql', '--source', 'mysql://u@h/app', ...STORAGE];
    const my = parseInvocation([...mysql, '--method', 'physical', '--type', 'incremental'], {});
    assert.equal((my as { method: BackupMethod }).method, BackupMethod.PHYSICAL);
    // Without --method, a MySQL incremental stays a binary log range (logical).
    assert.equal(
      (parseInvocation([...mysql, '--type', 'incremental'], {}) as { method: BackupMethod }).method,
      BackupMethod.LOGICAL,
    );
    const pgArgs = [
      'backup',
      '--engine',
      'postgres',
      '--source',
      'postgres://u@h/app',
      ...STORAGE,
      '--type',
      'incremental',
    ];
    const pg = parseInvocation(pgArgs, {});
    assert.ok(!(pg instanceof HelpRequest) && pg.command === 'backup');
    assert.equal((pg as { method: BackupMethod }).method, BackupMethod.PHYSICAL);
  });

  test('the constructs refuse a scheduled type the engine does not take', () => {
    assert.throws(
      () => checkBackupTypes(Engine.MONGODB, [BackupType.FULL, BackupType.INCREMENTAL]),
      /incremental backup, which a mongodb source does not take \(it takes full\)/,
    );
    assert.doesNotThrow(() => checkBackupTypes(Engine.MYSQL, [BackupType.DIFFERENTIAL]));
  });

  test('a chain whose record method is physical is refused on a managed source and with the logical method', () => {
    for (const service of [AWS_MANAGED_SERVICE, GOOGLE_MANAGED_SERVICE]) {
      for (const engine of Object.values(Engine)) {
        const c = ENGINE_CAPABILITIES[engine];
        for (const type of c.types) {
          const source = { engine, managed: false, method: BackupMethod.LOGICAL, service };
          const managed = () => checkBackupTypeSupported({ ...source, managed: true }, type);
          const logical = () => checkBackupTypeSupported(source, type);
          const refused = type !== BackupType.FULL && c.chainMethod === BackupMethod.PHYSICAL;
          if (refused) {
            // The message names the calling flavour's managed service, and only it.
            assert.throws(managed, new RegExp(`${c.label} ${type} schedule is set on a source on ${service.name},`));
            const other = service === AWS_MANAGED_SERVICE ? GOOGLE_MANAGED_SERVICE : AWS_MANAGED_SERVICE;
            assert.throws(managed, (e: Error) => !e.message.includes(other.name));
            assert.throws(logical, new RegExp(`needs physical backups \\(${c.chainOf}\\)`));
            assert.throws(logical, new RegExp(`self-managed source \\(e\\.g\\. on ${service.selfManagedOn}\\)`));
            const physical = { ...source, method: BackupMethod.PHYSICAL };
            assert.doesNotThrow(() => checkBackupTypeSupported(physical, type));
          } else {
            assert.doesNotThrow(managed, `${engine} ${type}`);
            assert.doesNotThrow(logical, `${engine} ${type}`);
          }
        }
      }
    }
  });

  test('an option for some engines only is refused for the others, and --help says which engines it is for', () => {
    const limited = RUNNER_OPTIONS.filter((o) => o.engines !== undefined);
    assert.deepEqual(
      limited.map((o) => o.name),
      ['max-replica-lag', 'jobs', 'row-counts', 'lock-timeout'],
    );
    const mongo = ['backup', '--engine', 'mongodb', '--source', 'mongodb://u@h/app', ...STORAGE];
    const pg = ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/app', ...STORAGE];
    const values: Record<string, string> = {
      'max-replica-lag': '30s',
      jobs: '3',
      'row-counts': 'estimate',
      'lock-timeout': '5',
    };
    for (const o of limited) {
      const value = values[o.name];
      assert.throws(
        () => parseInvocation([...mongo, `--${o.name}`, value], {}),
        new RegExp(`--${o.name} is '${value}', but it applies to PostgreSQL and MySQL/MariaDB only, not to MongoDB`),
      );
      // From its variable too (the task definition's way), naming both.
      assert.throws(
        () => parseInvocation(mongo, { [o.env]: value }),
        new RegExp(`leave --${o.name} \\(and ${o.env}\\)`),
      );
      assert.doesNotThrow(() => parseInvocation([...pg, `--${o.name}`, value], {}));
      const help = parseInvocation(['backup', '--help'], {});
      assert.ok(help instanceof HelpRequest);
      const line = help.text.split('\n').find((l) => l.trimStart().startsWith(`--${o.name} `));
      assert.match(line ?? '', /\[engines: postgres, mysql\]/);
    }
    // A restore into a data directory learns its engine from the manifest: nothing to refuse here.
    const dir = ['restore', '--from', 'file:///tmp/x', '--latest', '--target-dir', '/tmp/d', '--jobs', '2'];
    assert.doesNotThrow(() => parseInvocation(dir, {}));
  });

  test("--help names each engine's methods, types, point-in-time restore and log shipping from the record", () => {
    for (const argv of [['--help'], ['backup', '--help'], ['restore', '--help']]) {
      const help = parseInvocation(argv, {});
      assert.ok(help instanceof HelpRequest);
      const lines = help.text.split('\n');
      for (const engine of Object.values(Engine)) {
        const c = ENGINE_CAPABILITIES[engine];
        const line = lines.find((l) => l.trimStart().startsWith(`${engine} `));
        assert.ok(line !== undefined, `${argv.join(' ')}: no line for ${engine}`);
        assert.ok(line.includes(`methods ${c.methods.join('|')};`), line);
        assert.ok(line.includes(`types ${c.types.join('|')}`), line);
        for (const t of Object.values(BackupType)) assert.equal(line.includes(t), c.types.includes(t), `${t}: ${line}`);
        assert.ok(line.includes(`point-in-time ${c.pointInTime ? 'yes' : 'no'}`), line);
        assert.ok(line.includes(`log shipping ${c.logShipping ?? 'none'}`), line);
      }
    }
    const list = parseInvocation(['list', '--help'], {});
    assert.ok(list instanceof HelpRequest && !list.text.includes('Engines ('), 'list --help has no engine section');
  });
});

describe('codec table', () => {
  test('the pipeline stages and the extensions come from it', () => {
    for (const codec of Object.values(CODECS)) {
      assert.deepEqual(compressStage(codec.name)?.args, codec.compressArgs);
      assert.deepEqual(decompressStage(codec.name)?.args, codec.decompressArgs);
      assert.equal(compressionOfExtension(codec.extension), codec.name);
    }
    assert.equal(compressStage(Compression.NONE), undefined);
  });

  test('the option table takes its choices from the enum and its default from the table', () => {
    const compression = RUNNER_OPTIONS.find((o) => o.name === 'compression')!;
    assert.deepEqual(compression.choices, Object.values(Compression));
    assert.equal(compression.default, DEFAULT_COMPRESSION);
    const help = parseInvocation(['backup', '--help'], {});
    assert.ok(help instanceof HelpRequest);
    assert.match(help.text, new RegExp(`--compression .* \\(default ${DEFAULT_COMPRESSION}\\)`));
    const inv = parseInvocation(['backup', '--engine', 'mysql', '--source', 'mysql://u@h/app', ...STORAGE], {});
    assert.equal((inv as { compression: Compression }).compression, DEFAULT_COMPRESSION);
  });
});
