// Build step (1): the CDK Terrain (`cdktn`) entry `db-backup-constructs/cdktn/aws`, generated from the
// compiled CDKTF AWS constructs (dist/lib/cdktf/{aws,common,index}) with the two package names
// swapped: `cdktf` → `cdktn` and `@cdktf/provider-aws` → `@cdktn/provider-aws`. cdktn is the
// maintained fork of cdktf with the same API under another name, so the same source serves both;
// a generated copy (not a run-time seam) keeps each entry loading only its own packages and its
// declarations typed against its own classes. There is no Google provider for cdktn yet.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const from = path.join(root, 'dist', 'lib', 'cdktf');
const to = path.join(root, 'dist', 'lib', 'cdktn');

/** Rewrite module specifiers in emitted JavaScript and declarations. */
export function swapSpecifiers(text) {
  return text
    .replace(/(["'])cdktf\1/g, '$1cdktn$1')
    .replace(/(["'])@cdktf\/provider-aws(\/[^"']*)?\1/g, '$1@cdktn/provider-aws$2$1');
}

function copy(src, dst) {
  const stat = fs.statSync(src);
  if (stat.isDirectory()) {
    fs.mkdirSync(dst, { recursive: true });
    for (const f of fs.readdirSync(src)) copy(path.join(src, f), path.join(dst, f));
    return;
  }
  if (!/\.(js|d\.ts)$/.test(src)) return;
  const out = swapSpecifiers(fs.readFileSync(src, 'utf8'));
  if (/["']@cdktf\//.test(out))
    throw new Error(`gen-cdktn: ${src} still loads a @cdktf package other than the ` + `AWS provider`);
  fs.writeFileSync(dst, out);
}

if (!fs.existsSync(path.join(from, 'aws', 'index.js'))) {
  console.error('gen-cdktn: dist/lib/cdktf/aws is missing; run the TypeScript build first');
  process.exit(1);
}
fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
for (const part of ['aws', 'common']) copy(path.join(from, part), path.join(to, part));

// The neutral entry's deprecated `aws` and `google` namespaces: getters, so a cloud's provider
// is loaded only when its namespace is used (tsc emits an eager `exports.aws = require("./aws")`).
const neutral = path.join(from, 'index.js');
const text = fs.readFileSync(neutral, 'utf8');
const lazy = text.replace(
  /^exports\.(aws|google) = require\("\.\/(aws|google)"\);$/gm,
  (_, name, mod) =>
    `Object.defineProperty(exports, "${name}", { enumerable: true, configurable: true, get: () => ` +
    `require("./${mod}") });`,
);
if (/exports\.(aws|google) = require/.test(lazy))
  throw new Error('gen-cdktn: the aws/google namespaces of dist/lib/cdktf/index.js are still eager');
fs.writeFileSync(neutral, lazy);
console.log('gen-cdktn: wrote dist/lib/cdktn (aws, common) from dist/lib/cdktf; made the cdktf namespaces lazy');
