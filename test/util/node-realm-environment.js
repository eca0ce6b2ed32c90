// jest's Node environment, but test code runs in the worker's own V8 realm, as under Node's test
// runner. jest's stock environment gives each test file a separate realm (a vm context), so
// arrays and objects made by Node's built-in modules (fs.readdirSync, spawnSync(...).output) have
// another Array/Object prototype than the test's literals, and node:assert's deepStrictEqual,
// which compares prototypes, fails on values that look equal. The project's code (FileStorage's
// lists) builds its results from such arrays, so fixing call sites cannot end it; one realm can.
//
// Each file still gets its own module registry (jest's runtime, per file). What a file leaves on
// the global object or in process.env is seen by the next file in the same worker, as it would be
// by the next test in one node:test file: tests restore what they change.
const vm = require('node:vm');
const { TestEnvironment } = require('jest-environment-node');

/** The vm contexts that stand for this realm: code compiled "into" them is compiled here. */
const thisRealm = new WeakSet();
const compileFunction = vm.compileFunction;
vm.compileFunction = function compileInThisRealm(code, params, options) {
  if (options?.parsingContext !== undefined && thisRealm.has(options.parsingContext)) {
    const { parsingContext: _, ...rest } = options;
    return compileFunction.call(this, code, params, rest);
  }
  return compileFunction.call(this, code, params, options);
};

class NodeRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    const sandbox = this.global;
    // jest keeps its own handles (the real Date, Promise, fs functions...) under symbols.
    for (const key of Object.getOwnPropertySymbols(sandbox)) globalThis[key] = sandbox[key];
    this.global = globalThis;
    thisRealm.add(this.context);
  }
}

module.exports = NodeRealmEnvironment;
