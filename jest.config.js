// The suite on jest: TypeScript through @swc/jest (to CommonJS, like the library's own build;
// `tsc --noEmit` does the type checks), Node's environment, two workers on a 2-core machine.
/** @type {import('jest').Config} */
module.exports = {
  // jest's node environment, with test code in the worker's own realm (see the file for why).
  testEnvironment: '<rootDir>/test/util/node-realm-environment.js',
  setupFiles: ['<rootDir>/test/util/deprecated-fail.js'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  // `import('../x.js')` in a test means the TypeScript source beside it, as under tsx.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  maxWorkers: 2,
  // Files start real PostgreSQL/MariaDB servers and run whole backups: generous, as Node's runner had none.
  testTimeout: 300_000,
  // The plain `tests: N passed, N failed` line CI reads comes after jest's own summary.
  reporters: ['default', '<rootDir>/test/util/tests-line-reporter.js'],
};
