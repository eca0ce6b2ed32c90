// Installs the packed tarball into fresh projects with only one flavour's packages each, and
// synthesizes a small stack in each: cdktf + @cdktf/provider-aws, cdktf + @cdktf/provider-google,
// and cdktn + @cdktn/provider-aws (CDK Terrain). The AWS cdktf project is also type-checked
// with the tsconfig `cdktf init` writes ("module": "CommonJS", no moduleResolution) and
// TypeScript 5, which resolves subpaths through `typesVersions`. Needs `npm run build` first.
//   node test/cdktf/pack-install.mjs            (prints one line per project, exits 1 on failure)
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-pack-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Like sh, without blocking: the three installs run at once (they wait on the network and disk). */
function shAsync(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${cmd} ${args.join(' ')} (in ` + `${cwd}) exited ${code}:\n${out}`)),
    );
  });
}

function sh(cmd, args, cwd) {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ` + `${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const CONSTRUCTS = 'constructs@~10.7.2';
const projects = [
  {
    name: 'cdktf-aws',
    deps: ['cdktf@~0.21.0', '@cdktf/provider-aws@^21.22.1', CONSTRUCTS, 'typescript@~5.9.0'],
    entry: 'db-backup-constructs/cdktf/aws',
    core: 'cdktf',
    provider:
      "const { AwsProvider } = require('@cdktf/provider-aws/lib/provider'); " +
      "new AwsProvider(stack, 'aws', { region: 'eu-west-1' });",
    absent: ['@cdktf/provider-google', 'aws-cdk-lib', 'cdktn'],
    typecheck: true,
  },
  {
    name: 'cdktf-google',
    deps: ['cdktf@~0.21.0', '@cdktf/provider-google@^16.12.1', CONSTRUCTS],
    entry: 'db-backup-constructs/cdktf/google',
    core: 'cdktf',
    provider:
      "const { GoogleProvider } = require('@cdktf/provider-google/lib/provider'); new " +
      "GoogleProvider(stack, 'google', { project: 'acme', region: 'europe-west1' });",
    absent: ['@cdktf/provider-aws', 'aws-cdk-lib', 'cdktn'],
  },
  {
    name: 'cdktn-aws',
    deps: ['cdktn@^0.24.0', '@cdktn/provider-aws@^25.7.0', CONSTRUCTS],
    entry: 'db-backup-constructs/cdktn/aws',
    core: 'cdktn',
    provider:
      "const { AwsProvider } = require('@cdktn/provider-aws/lib/provider'); " +
      "new AwsProvider(stack, 'aws', { region: 'eu-west-1' });",
    absent: ['cdktf', '@cdktf/provider-aws', '@cdktf/provider-google', 'aws-cdk-lib'],
  },
];

const AWS_APP = (p) => `
const { App, TerraformStack } = require('${p.core}');
const lib = require('${p.entry}');
const app = new App({ outdir: 'out' });
const stack = new TerraformStack(app, 'backup');
${p.provider}
new lib.DatabaseBackup(stack, 'Orders', {
  databaseId: 'orders',
  source: lib.BackupSource.postgres({ url: 'postgres://backup@orders.internal:5432/orders',
    passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw' } }),
  image: lib.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
  network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
  alarmEmails: ['oncall@example.com'],
});
app.synth();
`;
const GOOGLE_APP = (p) => `
const { App, TerraformStack } = require('${p.core}');
const lib = require('${p.entry}');
const app = new App({ outdir: 'out' });
const stack = new TerraformStack(app, 'backup');
${p.provider}
new lib.DatabaseBackup(stack, 'Orders', {
  databaseId: 'orders',
  project: 'acme',
  region: 'europe-west1',
  source: lib.BackupSource.postgres({ url: 'postgres://backup@10.0.0.5:5432/orders',
    passwordSecret: { id: 'projects/acme/secrets/pw' } }),
  image: lib.RunnerImage.fromImageUri('europe-west1-docker.pkg.dev/acme/dbbackup/dbbackup:0.1.0'),
  alarmEmails: ['oncall@example.com'],
});
app.synth();
`;
const TS_APP = `import { App, TerraformStack } from 'cdktf';
import { DatabaseBackup, BackupSchedule, BackupType, Retention } from 'db-backup-constructs/cdktf/aws';
const stack = new TerraformStack(new App(), 'typed');
const b: DatabaseBackup | undefined = undefined;
export const schedules = [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3' }) }];
export const retention = Retention.gfs();
export { stack, b };
`;
// What \`cdktf init --template=typescript\` writes (no moduleResolution: node10 under "CommonJS").
const CDKTF_INIT_TSCONFIG = {
  compilerOptions: {
    alwaysStrict: true,
    declaration: true,
    experimentalDecorators: true,
    inlineSourceMap: true,
    inlineSources: true,
    lib: ['es2018'],
    module: 'CommonJS',
    noEmitOnError: true,
    noFallthroughCasesInSwitch: true,
    noImplicitAny: true,
    noImplicitReturns: true,
    noImplicitThis: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    resolveJsonModule: true,
    strict: true,
    strictNullChecks: true,
    strictPropertyInitialization: true,
    stripInternal: true,
    target: 'ES2018',
    incremental: true,
    skipLibCheck: true,
  },
  include: ['**/*.ts'],
  exclude: ['node_modules', 'cdktf.out'],
};

let failed = false;
try {
  const tarball = path.join(
    work,
    sh(npm, ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], root).trim().split('\n').pop(),
  );
  const results = await Promise.all(
    projects.map(async (p) => {
      const started = Date.now();
      const dir = path.join(work, p.name);
      fs.mkdirSync(dir);
      fs.writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: p.name, version: '1.0.0', private: true }),
      );
      try {
        await shAsync(
          npm,
          ['install', '--prefer-offline', '--no-package-lock', '--loglevel=error', tarball, ...p.deps],
          dir,
        );
        for (const a of p.absent) {
          if (fs.existsSync(path.join(dir, 'node_modules', a)))
            throw new Error(`${a} was installed, but only ` + `${p.deps.join(', ')} were asked for`);
        }
        fs.writeFileSync(path.join(dir, 'main.js'), p.name.includes('google') ? GOOGLE_APP(p) : AWS_APP(p));
        await shAsync(process.execPath, ['main.js'], dir);
        const tf = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'stacks', 'backup', 'cdk.tf.json'), 'utf8'));
        const count = Object.values(tf.resource).reduce((n, byName) => n + Object.keys(byName).length, 0);
        if (count < 10) throw new Error(`only ${count} resources synthesized`);
        if (p.typecheck) {
          fs.writeFileSync(path.join(dir, 'typed.ts'), TS_APP);
          fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(CDKTF_INIT_TSCONFIG));
          await shAsync(
            process.execPath,
            [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', '.'],
            dir,
          );
        }
        return (
          `ok ${p.name}: ${count} resources, ${((Date.now() - started) / 1000).toFixed(0)} ` +
          `s${p.typecheck ? ', type-checked with the cdktf init tsconfig' : ''}`
        );
      } catch (e) {
        failed = true;
        return `not ok ${p.name}: ${e.message}`;
      }
    }),
  );
  for (const r of results) console.log(r);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
