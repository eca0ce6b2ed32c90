// The documentation against the code: docs/cli.md is what the option table generates, every link
// between the pages lands on a page and a heading that exist, the quick-start commands name real
// scripts, and every ```ts block in README.md and docs/*.md type-checks against the library.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI_DOCS_PATH, renderCliDocs } from '../scripts/gen-cli-docs';

const ROOT = path.join(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');

function pages(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join('docs', f));
  return ['README.md', ...docs];
}

function read(page: string): string {
  return fs.readFileSync(path.join(ROOT, page), 'utf8');
}

/** The lines of a page outside fenced code blocks, with their 1-based numbers. */
function prose(text: string): { line: string; no: number }[] {
  const out: { line: string; no: number }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced) out.push({ line, no: i + 1 });
  });
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { line } of prose(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

interface CodeBlock {
  page: string;
  /** The line of the opening fence. */
  line: number;
  info: string;
  code: string;
}

function codeBlocks(page: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let open: CodeBlock | undefined;
  read(page)
    .split('\n')
    .forEach((line, i) => {
      if (open === undefined) {
        const m = /^```(.*)$/.exec(line);
        if (m !== null) open = { page, line: i + 1, info: m[1].trim(), code: '' };
      } else if (line.startsWith('```')) {
        blocks.push(open);
        open = undefined;
      } else {
        open.code += line + '\n';
      }
    });
  assert.equal(open, undefined, `${page}: a code block opened at line ${open?.line} is never closed`);
  return blocks;
}

describe('docs/cli.md', () => {
  test('is what scripts/gen-cli-docs.ts makes of the option table (run `npm run docs`)', () => {
    const current = fs.existsSync(CLI_DOCS_PATH) ? fs.readFileSync(CLI_DOCS_PATH, 'utf8') : '';
    assert.ok(current === renderCliDocs(), 'docs/cli.md is stale: run `npm run docs` and commit it');
  });

  test('names every option with its default and its environment variable', () => {
    const text = renderCliDocs();
    const compression = text.split('\n').find((l) => l.startsWith('| `--compression` |'));
    assert.match(compression ?? '', /\| all \| `zstd`, `gzip`, `lz4`, `none` \| `zstd` \| `DBBACKUP_COMPRESSION` \|/);
    assert.match(text, /\| `--lock-wait` \| `backup` \| all \| integer \| `0` \| `DBBACKUP_LOCK_WAIT` \|/);
    // The engines an option applies to, from its table entry (the parser refuses the others).
    assert.match(
      text,
      /\| `--jobs` \| `backup`, `restore`, `drill` \| `postgres`, `mysql` \(others: `1` only\) \| integer \|/,
    );
    assert.match(text, /\| `--row-counts` \| `backup` \| `postgres`, `mysql` \| `exact`, `estimate` \|/);
    assert.match(text, /\| `DBBACKUP_PROGRESS_INTERVAL` \| Seconds between progress lines/);
  });
});

describe('the pages', () => {
  test('the README stays a first page: at most 300 lines, with both quick-start commands', () => {
    const readme = read('README.md');
    assert.ok(readme.split('\n').length <= 300, `README.md has ${readme.split('\n').length} lines`);
    assert.ok(readme.includes('npm ci && npm run demo'));
    assert.ok(readme.includes('npm ci && npm test'));
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    for (const name of ['demo', 'test', 'docs', 'bench', 'synth:tf']) {
      assert.ok(scripts[name], `no npm script '${name}'`);
    }
  });

  test('every relative link lands on a file, and every #fragment on a heading of its page', () => {
    const broken: string[] = [];
    for (const page of pages()) {
      for (const { line, no } of prose(read(page))) {
        for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1];
          if (/^[a-z]+:/i.test(target)) continue;
          const [file, fragment] = target.split('#', 2);
          const resolved = file === '' ? path.join(ROOT, page) : path.join(ROOT, path.dirname(page), file);
          if (!fs.existsSync(resolved)) {
            broken.push(`${page}:${no}: ${target}: no such file`);
          } else if (fragment !== undefined && resolved.endsWith('.md')) {
            if (!anchors(fs.readFileSync(resolved, 'utf8')).has(fragment)) {
              broken.push(`${page}:${no}: ${target}: no such heading in ${path.relative(ROOT, resolved)}`);
            }
          }
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  test("the anchor rule is GitHub's", () => {
    const text = '# `dbbackup` options\n## Restore, and why a failed restore leaves it\n## A\n## A\n```\n# not\n```\n';
    const a = anchors(text);
    assert.deepEqual([...a], ['dbbackup-options', 'restore-and-why-a-failed-restore-leaves-it', 'a', 'a-1']);
  });
});

describe('TypeScript code blocks in README.md and docs/*.md', () => {
  let dir = '';
  const files = new Map<string, CodeBlock>();

  beforeAll(() => {
    // Inside the project, so that imports of aws-cdk-lib and cdktf resolve from node_modules.
    dir = fs.mkdtempSync(path.join(ROOT, '.docs-check-'));
    for (const page of pages()) {
      for (const block of codeBlocks(page)) {
        const [lang, ...flags] = block.info.split(/\s+/);
        if (lang !== 'ts' && lang !== 'typescript') continue;
        if (flags.includes('nocheck')) continue;
        const name = `${page.replace(/[^\w]+/g, '_')}_L${block.line}.ts`;
        // `export {}` makes each block a module of its own, so two blocks may use the same names.
        fs.writeFileSync(path.join(dir, name), block.code + 'export {};\n');
        files.set(name, block);
      }
    }
    const tsconfig = {
      extends: '../tsconfig.json',
      compilerOptions: {
        noEmit: true,
        noUnusedLocals: false,
        noUnusedParameters: false,
        paths: {
          'db-backup-constructs': ['../lib/index.ts'],
          'db-backup-constructs/cdktf': ['../lib/cdktf/index.ts'],
          'db-backup-constructs/cdktf/aws': ['../lib/cdktf/aws/index.ts'],
          'db-backup-constructs/cdktf/google': ['../lib/cdktf/google/index.ts'],
          // The cdktn entry is generated from the cdktf AWS source at build time.
          'db-backup-constructs/cdktn/aws': ['../lib/cdktf/aws/index.ts'],
        },
      },
      include: ['*.ts'],
    };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  });

  afterAll(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  test("there are blocks to check (the README's CDK and CDKTF examples among them)", () => {
    const readmeBlocks = [...files.values()].filter((b) => b.page === 'README.md');
    assert.ok(readmeBlocks.length >= 2, `${readmeBlocks.length} checked ts blocks in README.md`);
    assert.ok(files.size >= 8, `only ${files.size} ts blocks found`);
  });

  test('type-check with tsc --noEmit (mark a deliberate fragment ```ts nocheck)', () => {
    const r = spawnSync(TSC, ['-p', path.join(dir, 'tsconfig.json'), '--pretty', 'false'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    // Name each error by its page and line, not by the temporary file.
    const location = /(?:\S*[\\/])?([\w.-]+\.ts)\((\d+),(\d+)\)/g;
    const report = `${r.stdout}${r.stderr}`.replace(location, (all, name, line, col) => {
      const block = files.get(name);
      return block ? `${block.page}:${block.line + Number(line)}:${col}` : all;
    });
    assert.equal(r.error, undefined, `could not run ${TSC}: ${r.error?.message}`);
    assert.equal(r.status, 0, report);
  });

  test('a block that does not type-check is caught (the check can fail)', () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(
      path.join(bad, 'wrong.ts'),
      "import { DatabaseBackup } from 'db-backup-constructs';\n" + 'const n: number = DatabaseBackup;\nexport { n };\n',
    );
    const tsconfig = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.json'), 'utf8'));
    tsconfig.extends = '../../tsconfig.json';
    tsconfig.compilerOptions.paths = { 'db-backup-constructs': ['../../lib/index.ts'] };
    fs.writeFileSync(path.join(bad, 'tsconfig.json'), JSON.stringify(tsconfig));
    const r = spawnSync(TSC, ['-p', path.join(bad, 'tsconfig.json'), '--pretty', 'false'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /wrong\.ts\(2,7\): error TS2322/);
  });
});
