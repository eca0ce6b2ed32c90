import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The folder of this package, found by walking up from this file, so that the pre-bundled
 * runner and Lambda are found both from the sources (tests) and from `dist/` (users).
 */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'db-backup-constructs') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`db-backup-constructs: cannot find the package root above ${__dirname}`);
    dir = up;
  }
}

/**
 * The folder of a pre-bundled asset (`runner` holds `dbbackup.js` and the `Dockerfile`,
 * `lambda/verify` the verification function). Fails with the fix when the build has not run.
 */
export function bundledAsset(name: 'runner' | 'lambda/verify'): string {
  const dir = path.join(packageRoot(), 'dist', name);
  if (!fs.existsSync(dir)) {
    throw new Error(
      `db-backup-constructs: the bundled ${name} is missing at ${dir}; run 'npm run build' in the package first.`,
    );
  }
  return dir;
}
