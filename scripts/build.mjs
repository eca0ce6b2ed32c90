// Build: type-check everything, emit the construct library with declarations, and bundle the
// runner and the verification Lambda with esbuild, so a user's `cdk synth` needs neither
// esbuild nor Docker to bundle them.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
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

// The cloud SDKs are most of the runner's bundle (about 4.4 of its 5 MB), and Node parses the whole
// file at every start, even the parts a run never calls: every `wal-push` paid for it. The runner
// already requires them on first use (inside the function that needs them), so here each group is
// bundled on its own and embedded gzip'd (a string is far cheaper to read past than code), then
// unpacked and compiled when the runner first requires one of its packages: one file still, and the
// same code once loaded. A group keeps packages that share dependencies together (one copy of
// @smithy/core for S3 and KMS, as in one bundle). `kind` is how the runner's sources load the package
// (`import` or `require`), so that it resolves to the same build of it (ESM or CommonJS) as before;
// the build fails if a source loads it otherwise.
const DEFERRED = {
  aws: { '@aws-sdk/client-s3': 'import-statement', '@aws-sdk/client-kms': 'require-call' },
  azure: { '@azure/storage-blob': 'require-call', '@azure/identity': 'require-call' },
};

async function deferredGroup(group) {
  const pkgs = Object.entries(DEFERRED[group]);
  const entry = [
    ...pkgs.map(([p, kind], i) => (kind === 'import-statement' ? `import * as m${i} from '${p}';` : '')),
    'export const modules = {',
    ...pkgs.map(([p, kind], i) => `  '${p}': ${kind === 'import-statement' ? `m${i}` : `require('${p}')`},`),
    '};',
  ].join('\n');
  const out = await esbuild.build({
    ...common,
    stdin: { contents: entry, resolveDir: root, sourcefile: `deferred-${group}.js` },
    write: false,
  });
  const packed = zlib.gzipSync(out.outputFiles[0].text, { level: 9 }).toString('base64');
  return [
    `// ${pkgs.map(([p]) => p).join(', ')}: bundled, gzip'd and compiled on first use (scripts/build.mjs).`,
    `const code = require('node:zlib').gunzipSync(Buffer.from(${JSON.stringify(packed)}, 'base64')).toString();`,
    "const params = ['exports', 'require', 'module', '__filename', '__dirname'];",
    `const load = require('node:vm').compileFunction(code, params, { filename: __filename + '#${group}' });`,
    'const m = { exports: {} };',
    'load(m.exports, require, m, __filename, __dirname);',
    'module.exports = m.exports.modules;',
  ].join('\n');
}

const deferredSdks = {
  name: 'deferred-sdks',
  setup(build) {
    const groupOf = new Map(Object.entries(DEFERRED).flatMap(([g, pkgs]) => Object.keys(pkgs).map((p) => [p, g])));
    const filter = new RegExp(`^(${[...groupOf.keys()].map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
    build.onResolve({ filter }, (args) => {
      if (args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const want = DEFERRED[groupOf.get(args.path)][args.path];
      if (args.kind !== want) {
        const text =
          `${args.importer} loads ${args.path} by ${args.kind}, but DEFERRED in scripts/build.mjs says ${want}: ` +
          'make them agree (the runner requires the SDKs on first use)';
        return { errors: [{ text }] };
      }
      return { path: args.path, namespace: 'deferred-sdk' };
    });
    build.onResolve({ filter: /.*/, namespace: 'deferred-sdk' }, (args) => ({
      path: args.path,
      namespace: 'deferred-group',
    }));
    build.onLoad({ filter: /.*/, namespace: 'deferred-sdk' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(groupOf.get(args.path))})[${JSON.stringify(args.path)}];`,
      loader: 'js',
    }));
    build.onLoad({ filter: /.*/, namespace: 'deferred-group' }, async (args) => ({
      contents: await deferredGroup(args.path),
      loader: 'js',
    }));
  },
};

// `import * as fs from 'node:fs'` compiles to a copy of the module's every property, in each file
// that has it (esbuild's interop for CommonJS): about a hundred copies at every start. Here each
// such built-in gets one namespace, made once and shared by the runner's files.
const sharedBuiltins = {
  name: 'shared-builtins',
  setup(build) {
    build.onResolve({ filter: /^node:(fs|path|os|crypto)$/, namespace: 'file' }, (args) =>
      args.importer.includes(`${path.sep}node_modules${path.sep}`) || args.kind !== 'import-statement'
        ? undefined
        : { path: args.path, namespace: 'shared-builtin' },
    );
    build.onLoad({ filter: /.*/, namespace: 'shared-builtin' }, (args) => ({
      contents: `export * from '${args.path}';\n`,
      loader: 'js',
    }));
  },
};

const bundles = [
  {
    entryPoints: ['runner/src/main.ts'],
    outfile: 'dist/runner/dbbackup.js',
    ...common,
    plugins: [deferredSdks, sharedBuiltins],
  },
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
