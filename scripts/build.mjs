// Build: type-check everything, emit the construct library with declarations, and bundle the
// runner and the verification Lambda with esbuild, so a user's `cdk synth` needs neither
// esbuild nor Docker to bundle them.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`)),
    );
  });
}

const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
};

const bundles = [
  { entryPoints: ['runner/src/main.ts'], outfile: 'dist/runner/dbbackup.js', ...common },
  { entryPoints: ['runner/src/demo.ts'], outfile: 'dist/runner/demo.js', ...common },
  { entryPoints: ['lambda/verify/index.ts'], outfile: 'dist/lambda/verify/index.js', ...common },
].filter((b) => fs.existsSync(b.entryPoints[0]));

// `--bundle-only`: just the esbuild bundles (fast; for working on one part while another is mid-change).
const bundleOnly = process.argv.includes('--bundle-only');
await Promise.all([
  ...(bundleOnly ? [] : [run(tsc, ['--noEmit', '-p', 'tsconfig.json']), run(tsc, ['-p', 'tsconfig.lib.json'])]),
  ...bundles.map((b) => esbuild.build(b)),
]);
fs.copyFileSync('runner/Dockerfile', 'dist/runner/Dockerfile');
// The CDK Terrain entry (dist/lib/cdktn/aws), generated from the compiled CDKTF AWS constructs.
if (!bundleOnly) await run(process.execPath, ['scripts/gen-cdktn.mjs']);
console.log(`build: type-checked, emitted dist/lib, bundled ${bundles.map((b) => b.outfile).join(', ')}`);
