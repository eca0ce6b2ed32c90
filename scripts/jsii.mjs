// jsii: compile the AWS CDK entry (lib/index.ts: lib/aws and the part of lib/core it uses)
// into a jsii assembly, and with `--python` generate the Python package from it.
//
// jsii runs in a staging folder (dist/jsii-package) that holds a copy of lib/ without the
// CDKTF flavour and a package.json without the CDKTF peers: every peer of the package jsii
// compiles becomes a dependency of the generated packages, and a Python user of the CDK
// constructs must not have to install cdktf and two Terraform providers. The staged package
// also carries the pre-bundled runner, Lambda and Dockerfile, which the constructs load at
// synth time (pacmak embeds the staged package in the Python one). The existing build (tsc
// and esbuild into dist/) is not touched; the assembly is copied to `.jsii` at the root.
//
//   node scripts/jsii.mjs                 compile; fails on any jsii error
//   node scripts/jsii.mjs --python        compile, then jsii-pacmak --targets python
//   node scripts/jsii.mjs --python --code-only   generate the Python sources without building
//                                         a wheel (the build needs PyPI, see below)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stage = path.join(root, 'dist', 'jsii-package');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const env = { ...process.env, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION: '1' };

/** The peers of the CDKTF flavour, left out of the staged package. */
const CDKTF_PEER = /^(cdktf|cdktn|@cdktf\/|@cdktn\/)/;

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, env, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`jsii: ${path.basename(cmd)} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    process.exit(r.status ?? 1);
  }
}

// The bundles the constructs load (fast; the full build is `npm run build`).
run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--bundle-only'], root);

fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
fs.cpSync(path.join(root, 'lib'), path.join(stage, 'lib'), {
  recursive: true,
  filter: (src) => !src.startsWith(path.join(root, 'lib', 'cdktf')),
});
const copied = ['dist/runner/dbbackup.js', 'dist/runner/Dockerfile', 'dist/lambda/verify/index.js', 'LICENSE',
  'README.md'];
for (const f of copied) {
  if (!fs.existsSync(path.join(root, f))) continue;
  fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
  fs.copyFileSync(path.join(root, f), path.join(stage, f));
}

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const keep = (deps) => Object.fromEntries(Object.entries(deps ?? {}).filter(([name]) => !CDKTF_PEER.test(name)));
const staged = {
  ...pkg,
  scripts: undefined,
  bin: undefined,
  typesVersions: undefined,
  exports: { '.': pkg.exports['.'], './package.json': './package.json' },
  files: ['dist/lib', 'dist/runner/dbbackup.js', 'dist/runner/Dockerfile', 'dist/lambda', '.jsii', 'LICENSE',
    'README.md'],
  peerDependencies: keep(pkg.peerDependencies),
  peerDependenciesMeta: undefined,
  // jsii reads the peers' versions from here (and warns unless they are the lowest of each range).
  devDependencies: keep(
    Object.fromEntries(Object.entries(pkg.devDependencies).filter(([n]) => n in (pkg.peerDependencies ?? {}))),
  ),
  jsii: { ...pkg.jsii, outdir: path.relative(stage, path.join(root, 'dist', 'jsii')) },
};
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
// The staged folder resolves aws-cdk-lib and constructs through the package's node_modules.
fs.symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'), 'dir');

run(bin('jsii'), ['--silence-warnings', 'metadata/missing-dev-dependency'], stage);
fs.copyFileSync(path.join(stage, '.jsii'), path.join(root, '.jsii'));
const assembly = JSON.parse(fs.readFileSync(path.join(stage, '.jsii'), 'utf8'));
const dependencies = Object.keys(assembly.dependencies ?? {}).join(', ');
console.log(`jsii: ${Object.keys(assembly.types).length} types in the assembly, dependencies ${dependencies}`);

if (process.argv.includes('--python')) {
  // A full build makes a wheel and an sdist in dist/jsii/python; pacmak installs its build tools
  // (setuptools, build, twine, packaging: see node_modules/jsii-pacmak/lib/targets/python/
  // requirements-dev.txt) from PyPI into a virtual environment first.
  const args = ['--targets', 'python', '--force'];
  if (process.argv.includes('--code-only')) args.push('--code-only');
  run(bin('jsii-pacmak'), args, stage);
  console.log(`jsii: Python package in ${path.relative(root, path.join(root, 'dist', 'jsii', 'python'))}`);
}
