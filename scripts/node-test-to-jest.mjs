// Converts test files written for Node's test runner (node:test) to jest, in place:
//   node scripts/node-test-to-jest.mjs test/runner/new-thing.test.ts [more files...]
//
// What it does, mechanically, from the parsed source (so strings, regexes and templates are safe):
// - the `node:test` import becomes an explicit `@jest/globals` import of the same functions
//   (before → beforeAll, after → afterAll, suite → describe; it/test/describe/beforeEach/afterEach
//   keep their names);
// - options objects are taken out of the call: `{ timeout: N }` becomes jest's timeout argument
//   (after the function), `{ skip: true | 'reason' }` becomes `.skip`, `{ skip: EXPR }` becomes
//   `(EXPR ? test.skip : test)(...)`, `{ todo }` becomes `.todo` (`.skip` when the todo has a body,
//   which jest's todo does not take), `{ only }` becomes `.only`, `{ concurrency }` is dropped
//   (jest runs a file's tests one after another, as node:test does by default);
// - test.skip / test.todo / test.only / describe.skip stay (describe.todo becomes describe.skip).
// What it cannot do it reports with the line, and the exit code is 1: a callback that takes a
// parameter (node's test context `t` — t.after, t.diagnostic, t.skip, t.mock, subtests — or
// `done`), a test nested in a test, an async describe, a describe-level timeout, mock imports.
// A file without a node:test import is left as it is.
import * as fs from 'node:fs';
import swc from '@swc/core';

const RENAME = {
  test: 'test',
  it: 'it',
  describe: 'describe',
  suite: 'describe',
  before: 'beforeAll',
  after: 'afterAll',
  beforeEach: 'beforeEach',
  afterEach: 'afterEach',
};
const HOOKS = new Set(['beforeAll', 'afterAll', 'beforeEach', 'afterEach']);
const FUNCTION_TYPES = new Set(['ArrowFunctionExpression', 'FunctionExpression']);
/** Expressions that bind looser than `?:`'s condition: parenthesized when they become one. */
const LOOSE = new Set([
  'ConditionalExpression',
  'AssignmentExpression',
  'SequenceExpression',
  'ArrowFunctionExpression',
  'YieldExpression',
]);

function convert(file) {
  const text = fs.readFileSync(file, 'utf8');
  const bytes = Buffer.from(text, 'utf8');
  const ast = swc.parseSync(text, { syntax: 'typescript', target: 'es2022' });
  // Span offsets are 1-based byte offsets from a base swc chooses; find it from the first statement.
  if (ast.body.length === 0) return { changed: false, warnings: [] };
  const base = findBase(bytes, ast);
  const at = (pos) => pos - base;
  const slice = (span) => bytes.subarray(at(span.start), at(span.end)).toString('utf8');
  const lineOf = (pos) => bytes.subarray(0, at(pos)).toString('utf8').split('\n').length;

  const imports = ast.body.filter((s) => s.type === 'ImportDeclaration' && s.source.value === 'node:test');
  if (imports.length === 0) return { changed: false, warnings: [] };

  const warnings = [];
  const warn = (pos, message) => warnings.push(`${file}:${lineOf(pos)}: ${message}`);
  /** local name → jest name */
  const locals = new Map();
  const wanted = new Set();
  for (const decl of imports) {
    for (const spec of decl.specifiers) {
      if (spec.type !== 'ImportSpecifier') {
        warn(decl.span.start, `a ${spec.type} of node:test cannot be converted; import its functions by name`);
        continue;
      }
      const imported = spec.imported?.value ?? spec.local.value;
      const jestName = RENAME[imported];
      if (jestName === undefined) {
        warn(
          decl.span.start,
          `node:test's '${imported}' has no jest equivalent here (mock → jest.fn/jest.spyOn); convert by hand`,
        );
        continue;
      }
      locals.set(spec.local.value, jestName);
      wanted.add(jestName);
    }
  }

  /** Edits as byte ranges: { start, end, text } (start === end inserts). */
  const edits = [];
  imports.forEach((decl, i) => {
    const names = [...wanted].sort();
    edits.push({
      start: at(decl.span.start),
      end: at(decl.span.end),
      text: i === 0 ? `import { ${names.join(', ')} } from '@jest/globals';` : '',
    });
  });

  /** What a call is: { name: jest name, modifier: 'skip' | 'todo' | 'only' | undefined } or undefined. */
  function classify(callee) {
    if (callee.type === 'Identifier' && locals.has(callee.value))
      return { name: locals.get(callee.value), modifier: undefined };
    if (
      callee.type === 'MemberExpression' &&
      callee.object.type === 'Identifier' &&
      locals.has(callee.object.value) &&
      callee.property.type === 'Identifier' &&
      ['skip', 'todo', 'only'].includes(callee.property.value)
    ) {
      return { name: locals.get(callee.object.value), modifier: callee.property.value };
    }
    return undefined;
  }

  function convertCall(call, inTest) {
    const kind = classify(call.callee);
    if (kind === undefined) return false;
    const args = call.arguments.map((a) => a.expression);
    const isHook = HOOKS.has(kind.name);
    const isSuite = kind.name === 'describe';
    const optionsIndex = args.findIndex((a) => a.type === 'ObjectExpression');
    // The function: a function argument, else a name passed last (not a test's only argument, its name).
    const last = args[args.length - 1];
    const named = last?.type === 'Identifier' && (isHook || args.length > 1) ? last : undefined;
    const fn = args.find((a) => FUNCTION_TYPES.has(a.type)) ?? named;
    if (inTest && !isHook)
      warn(
        call.span.start,
        `${kind.name} inside a test (a node:test subtest): jest has none; make it a describe with tests`,
      );
    if (fn !== undefined && FUNCTION_TYPES.has(fn.type) && fn.params.length > 0) {
      warn(
        fn.span.start,
        `the ${kind.name} callback takes a parameter (the test context t, or done): convert its uses by hand`,
      );
    }
    if (isSuite && fn?.async)
      warn(fn.span.start, 'an async describe: jest collects tests synchronously; move the awaits into beforeAll');

    let modifier = kind.modifier;
    let condition;
    let timeout;
    if (optionsIndex >= 0) {
      for (const prop of args[optionsIndex].properties) {
        const key =
          prop.type === 'KeyValueProperty'
            ? (prop.key.value ?? slice(prop.key.span))
            : prop.type === 'Identifier'
              ? prop.value
              : undefined;
        const value = prop.type === 'KeyValueProperty' ? prop.value : prop.type === 'Identifier' ? prop : undefined;
        if (key === undefined || value === undefined) {
          warn(
            prop.span?.start ?? call.span.start,
            'an options object with a spread or computed key: convert by hand',
          );
          continue;
        }
        if (key === 'timeout') {
          if (isSuite)
            warn(
              value.span.start,
              'a describe-level timeout: jest takes timeouts per test or hook; add it to them (or jest.setTimeout)',
            );
          else timeout = slice(value.span);
        } else if (key === 'skip' || key === 'todo' || key === 'only') {
          if (value.type === 'BooleanLiteral' && !value.value) continue;
          const literal =
            value.type === 'BooleanLiteral' || value.type === 'StringLiteral' || value.type === 'TemplateLiteral';
          if (literal) modifier = key;
          else if (key === 'skip' || key === 'todo')
            condition = LOOSE.has(value.type) ? `(${slice(value.span)})` : slice(value.span);
          else warn(value.span.start, `only: with an expression; use ${kind.name}.only by hand`);
        } else if (key === 'concurrency') {
          // jest runs one file's tests one after another; nothing to carry over.
        } else {
          warn(value.span.start, `the option '${key}' has no jest equivalent; convert by hand`);
        }
      }
    }
    if (modifier === 'todo' && (fn !== undefined || isSuite)) {
      if (!isSuite) warn(call.span.start, "a todo with a body: jest's test.todo takes none; made it test.skip");
      modifier = 'skip';
    }
    if (isHook && modifier !== undefined)
      warn(call.span.start, `${kind.name}.${modifier} is not a jest hook; convert by hand`);

    const bare = kind.name;
    const callee =
      condition !== undefined
        ? `(${condition} ? ${bare}.skip : ${bare})`
        : modifier !== undefined
          ? `${bare}.${modifier}`
          : bare;
    if (callee !== slice(call.callee.span))
      edits.push({ start: at(call.callee.span.start), end: at(call.callee.span.end), text: callee });
    if (optionsIndex >= 0) {
      // Remove `, { ... }` (or `{ ... }, ` when it comes first).
      const o = args[optionsIndex];
      if (optionsIndex > 0) edits.push({ start: at(args[optionsIndex - 1].span.end), end: at(o.span.end), text: '' });
      else if (args.length > 1) edits.push({ start: at(o.span.start), end: at(args[1].span.start), text: '' });
      else edits.push({ start: at(o.span.start), end: at(o.span.end), text: '' });
    }
    if (modifier === 'todo' && fn === undefined) {
      // test.todo(name): nothing more.
    } else if (timeout !== undefined) {
      if (fn === undefined) warn(call.span.start, 'a timeout without a function: convert by hand');
      else edits.push({ start: at(fn.span.end), end: at(fn.span.end), text: `, ${timeout}` });
    }
    return !isSuite && !isHook;
  }

  function walk(node, inTest) {
    if (Array.isArray(node)) {
      for (const n of node) walk(n, inTest);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    let testBody = inTest;
    if (node.type === 'CallExpression' && convertCall(node, inTest)) testBody = true;
    for (const [k, v] of Object.entries(node)) if (k !== 'span' && typeof v === 'object') walk(v, testBody);
  }
  walk(
    ast.body.filter((s) => !imports.includes(s)),
    false,
  );

  edits.sort((a, b) => b.start - a.start || b.end - a.end);
  let out = bytes;
  let limit = Infinity;
  for (const e of edits) {
    if (e.end > limit) throw new Error(`${file}: overlapping edits at byte ${e.start}`);
    out = Buffer.concat([out.subarray(0, e.start), Buffer.from(e.text, 'utf8'), out.subarray(e.end)]);
    limit = e.start;
  }
  fs.writeFileSync(file, out);
  return { changed: true, warnings };
}

/** The span base: swc's offset for byte 0, from where the first statement starts (after comments). */
function findBase(bytes, ast) {
  const src = bytes.toString('latin1'); // one char per byte: indices are byte offsets
  let p = 0;
  for (;;) {
    const rest = src.slice(p);
    const skip = /^(\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/|#![^\n]*)/.exec(rest);
    if (skip === null || skip[0].length === 0) break;
    p += skip[0].length;
  }
  const base = ast.body[0].span.start - p;
  if (ast.body[0].type === 'ImportDeclaration' && src.slice(p, p + 6) !== 'import') {
    throw new Error('cannot place swc spans in the source (unexpected parser offsets)');
  }
  return base;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node scripts/node-test-to-jest.mjs FILE.test.ts...');
  process.exit(2);
}
let warned = false;
for (const file of files) {
  const { changed, warnings } = convert(file);
  console.log(`${changed ? 'converted' : 'unchanged (no node:test import)'}: ${file}`);
  for (const w of warnings) console.error(`  needs a hand: ${w}`);
  warned ||= warnings.length > 0;
}
process.exit(warned ? 1 : 0);
