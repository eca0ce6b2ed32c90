// jsii: compile the library's entries into jsii assemblies, each in its own staged package, and
// with `--python` generate the Python package of one.
//
// Each flavour is compiled in a staging folder (dist/jsii-package for the CDK entry,
// dist/jsii-<flavour> for the others) that holds a copy of the part of lib/ the entry uses and
// a package.json whose peers are that flavour's only: every peer of the package jsii compiles
// becomes a dependency of the generated packages, and a Python user of the CDK constructs must
// not have to install cdktf and two Terraform providers (nor a CDKTF user aws-cdk-lib). The
// staged package also carries the pre-bundled runner, Lambda and Dockerfile, which the
// constructs load at synth time (pacmak embeds the staged package in the Python one). The
// existing build (tsc and esbuild into dist/) is not touched; the CDK assembly (the one the npm
// package ships) is copied to `.jsii` at the root, the others stay in their staging folders.
//
//   node scripts/jsii.mjs                  compile every flavour that compiles (FLAVOURS below)
//   node scripts/jsii.mjs cdktf-aws        compile one (cdk, cdktf-aws, cdktn-aws, cdktf-google)
//   node scripts/jsii.mjs cdk --python     compile, then jsii-pacmak --targets python
//   node scripts/jsii.mjs cdk --python --code-only   generate the Python sources without building
//                                          a wheel (the build needs PyPI, see below)
import { spawn, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const env = { ...process.env, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION: '1' };
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** `cdktf` → `cdktn` and `@cdktf/provider-aws` → `@cdktn/provider-aws` (as scripts/gen-cdktn.mjs does). */
const toCdktn = (text) =>
  text
    .replace(/(["'])cdktf\1/g, '$1cdktn$1')
    .replace(/(["'])@cdktf\/provider-aws(\/[^"']*)?\1/g, '$1@cdktn/provider-aws$2$1');

/**
 * The entries jsii compiles. `dirs` are the folders of lib/ the entry uses, `peers` the
 * packages it loads, `rewrite` a change made to the staged sources.
 */
const FLAVOURS = {
  cdk: {
    stage: 'jsii-package',
    name: pkg.name,
    entry: 'lib/index',
    dirs: ['lib/index.ts', 'lib/core', 'lib/aws'],
    peers: ['aws-cdk-lib', 'constructs'],
    python: pkg.jsii.targets.python,
    shipped: true,
  },
  'cdktf-aws': {
    stage: 'jsii-cdktf-aws',
    name: 'db-backup-constructs-cdktf-aws',
    entry: 'lib/cdktf/aws/index',
    dirs: ['lib/core', 'lib/cdktf/common', 'lib/cdktf/aws'],
    peers: ['cdktf', 'constructs', '@cdktf/provider-aws'],
    python: { distName: 'db-backup-constructs-cdktf-aws', module: 'db_backup_constructs_cdktf_aws' },
  },
  'cdktn-aws': {
    stage: 'jsii-cdktn-aws',
    name: 'db-backup-constructs-cdktn-aws',
    entry: 'lib/cdktf/aws/index',
    dirs: ['lib/core', 'lib/cdktf/common', 'lib/cdktf/aws'],
    peers: ['cdktn', 'constructs', '@cdktn/provider-aws'],
    rewrite: toCdktn,
    python: { distName: 'db-backup-constructs-cdktn-aws', module: 'db_backup_constructs_cdktn_aws' },
  },
  'cdktf-google': {
    stage: 'jsii-cdktf-google',
    name: 'db-backup-constructs-cdktf-google',
    entry: 'lib/cdktf/google/index',
    dirs: ['lib/core', 'lib/cdktf/common', 'lib/cdktf/google'],
    peers: ['cdktf', 'constructs', '@cdktf/provider-google'],
    python: { distName: 'db-backup-constructs-cdktf-google', module: 'db_backup_constructs_cdktf_google' },
  },
};
/** What `node scripts/jsii.mjs` (and so `npm run jsii` and CI) compiles. */
const DEFAULT = ['cdk', 'cdktf-aws', 'cdktn-aws', 'cdktf-google'];

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, env, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`jsii: ${path.basename(cmd)} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    process.exit(r.status ?? 1);
  }
}

function copyTree(src, dst, rewrite) {
  if (fs.statSync(src).isDirectory()) {
    fs.mkdirSync(dst, { recursive: true });
    for (const f of fs.readdirSync(src)) copyTree(path.join(src, f), path.join(dst, f), rewrite);
    return;
  }
  const text = fs.readFileSync(src, 'utf8');
  fs.writeFileSync(dst, rewrite ? rewrite(text) : text);
}

/** Stage one flavour (its sources and package.json) for jsii; returns the staging folder. */
function stageFlavour(id) {
  const f = FLAVOURS[id];
  const stage = path.join(root, 'dist', f.stage);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  for (const d of f.dirs) {
    fs.mkdirSync(path.dirname(path.join(stage, d)), { recursive: true });
    copyTree(path.join(root, d), path.join(stage, d), f.rewrite);
  }
  const copied = [
    'dist/runner/dbbackup.js',
    'dist/runner/Dockerfile',
    'dist/lambda/verify/index.js',
    'LICENSE',
    'README.md',
  ];
  for (const c of copied) {
    if (!fs.existsSync(path.join(root, c))) continue;
    fs.mkdirSync(path.dirname(path.join(stage, c)), { recursive: true });
    fs.copyFileSync(path.join(root, c), path.join(stage, c));
  }
  const pick = (deps) => Object.fromEntries(Object.entries(deps ?? {}).filter(([name]) => f.peers.includes(name)));
  const staged = {
    ...pkg,
    name: f.name,
    scripts: undefined,
    bin: undefined,
    typesVersions: undefined,
    main: `dist/${f.entry}.js`,
    types: `dist/${f.entry}.d.ts`,
    exports: {
      '.': { types: `./dist/${f.entry}.d.ts`, default: `./dist/${f.entry}.js` },
      './package.json': './package.json',
    },
    files: [
      'dist/lib',
      'dist/runner/dbbackup.js',
      'dist/runner/Dockerfile',
      'dist/lambda',
      '.jsii',
      'LICENSE',
      'README.md',
    ],
    peerDependencies: pick(pkg.peerDependencies),
    peerDependenciesMeta: undefined,
    // jsii reads the peers' versions from here (and warns unless they are the lowest of each range).
    devDependencies: pick(pkg.devDependencies),
    jsii: {
      ...pkg.jsii,
      targets: { ...pkg.jsii.targets, python: f.python },
      outdir: path.relative(stage, path.join(root, 'dist', f.stage === 'jsii-package' ? 'jsii' : `${f.stage}-out`)),
      // Leave out what the flavour does not use, keep what it does (lib/cdktf holds lib/cdktf/aws).
      excludeTypescript: pkg.jsii.excludeTypescript.filter((e) => !f.dirs.some((d) => `${d}/`.startsWith(`${e}/`))),
    },
  };
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
  // The staged folder resolves the peers through the package's node_modules.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'), 'dir');

  return stage;
}

/** Compile one staged flavour with jsii; its output is printed in one piece when it ends. */
function compileStaged(id, stage) {
  const f = FLAVOURS[id];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(bin('jsii'), ['--silence-warnings', 'metadata/missing-dev-dependency'], { cwd: stage, env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code, signal) => {
      console.log(`jsii: compiled ${id} (${f.entry}.ts, peers ${f.peers.join(', ')}) in ${path.relative(root, stage)}`);
      if (out.trim()) process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
      if (code !== 0) {
        console.error(`jsii: jsii for ${id} exited with ${code ?? signal}`);
        process.exit(code ?? 1);
      }
      if (f.shipped) fs.copyFileSync(path.join(stage, '.jsii'), path.join(root, '.jsii'));
      const assembly = JSON.parse(fs.readFileSync(path.join(stage, '.jsii'), 'utf8'));
      const dependencies = Object.keys(assembly.dependencies ?? {}).join(', ');
      console.log(
        `jsii: ${id}: ${Object.keys(assembly.types).length} types in the assembly, dependencies ` +
          `${dependencies}, ${Math.round((Date.now() - started) / 1000)} s`,
      );
      resolve();
    });
  });
}

/** Compile the flavours, as many at a time as the machine has cores (each jsii run is one process). */
async function compileAll(ids) {
  const stages = ids.map(stageFlavour);
  const queue = ids.map((id, i) => [id, stages[i]]);
  const workers = Array.from({ length: Math.min(queue.length, os.availableParallelism()) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await compileStaged(...next);
  });
  await Promise.all(workers);
  return stages;
}

const args = process.argv.slice(2);
const named = args.filter((a) => !a.startsWith('--'));
for (const n of named) {
  if (!(n in FLAVOURS)) {
    console.error(`jsii: unknown flavour '${n}'; give one of ${Object.keys(FLAVOURS).join(', ')}.`);
    process.exit(2);
  }
}
const python = args.includes('--python');
if (python && named.length > 1) {
  console.error('jsii: --python builds one flavour at a time; name one, e.g. node scripts/jsii.mjs cdk --python.');
  process.exit(2);
}
const ids = named.length > 0 ? named : python ? ['cdk'] : DEFAULT;

// The bundles the constructs load (fast; the full build is `npm run build`).
run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--bundle-only'], root);
const stages = await compileAll(ids);

if (python) {
  // A full build makes a wheel and an sdist in the flavour's outdir; pacmak installs its build
  // tools (setuptools, build, twine, packaging: see node_modules/jsii-pacmak/lib/targets/python/
  // requirements-dev.txt) from PyPI into a virtual environment first.
  const pacmak = ['--targets', 'python', '--force'];
  if (args.includes('--code-only')) pacmak.push('--code-only');
  run(bin('jsii-pacmak'), pacmak, stages[0]);
  const staged = JSON.parse(fs.readFileSync(path.join(stages[0], 'package.json'), 'utf8'));
  const out = path.resolve(stages[0], staged.jsii.outdir);
  console.log(`jsii: Python package in ${path.relative(root, path.join(out, 'python'))}`);
}
