// Synthesizes the CDK for Terraform examples into cdktf.out/<example>/ (Terraform JSON, no
// Terraform binary, no cloud credentials, no network): `npm run synth:tf`.
//   cdktf.out/cdktf-aws/stacks/db-backup-aws/cdk.tf.json
//   cdktf.out/cdktf-google/stacks/db-backup-google/cdk.tf.json
// The verification Lambda's pre-built bundle is packed as a Terraform asset; it is built first
// (esbuild, a few seconds) when dist/ does not have it yet, or always with --rebuild.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);
const examples = ['cdktf-aws', 'cdktf-google'];

function run(args, env = {}) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`synth:tf: node ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

if (process.argv.includes('--rebuild') || !fs.existsSync(path.join('dist', 'lambda', 'verify', 'index.js'))) {
  run(['scripts/build.mjs', '--bundle-only']);
}

for (const name of examples) {
  const outdir = path.join('cdktf.out', name);
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  run(['--import', 'tsx', path.join('examples', name, 'main.ts')], { CDKTF_OUTDIR: outdir });
  const stacks = path.join(outdir, 'stacks');
  for (const stack of fs.readdirSync(stacks)) {
    const file = path.join(stacks, stack, 'cdk.tf.json');
    const tf = JSON.parse(fs.readFileSync(file, 'utf8'));
    const count = Object.values(tf.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    console.log(`synth:tf: ${file} (${count} resources)`);
  }
}
